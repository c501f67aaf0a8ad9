"""Following a run as it progresses: new metrics rows and status changes.

`RunWatcher(run_dir).poll()` returns the events since the last poll without blocking (the
TUI and the sweep scheduler call it on their own timers); `follow(run_dir)` is the blocking
iterator on top of it, ending after the run's terminal status.

Metrics are read incrementally from a byte offset; only complete lines are consumed, so a
partial last line (the worker mid-write) is picked up on a later poll. Status is read before
metrics in every poll, so when a terminal status is reported every row written before it has
been reported too. A run whose directory is deleted while it is followed raises `RunDeleted`
(a `RecordError` with one clear line). A worker that dies without a terminal status is
reconciled (`failed`), whether this process spawned it (`proc`) or another one did (its pid).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from engine.records import TERMINAL, RecordError, read_status

from .reconcile import reconcile


class RunDeleted(RecordError):
    """The run directory disappeared while it was being followed."""


@dataclass
class Event:
    kind: str            # "status" (data = the status dict) or "metrics" (data = one metrics row)
    data: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind == "status" and self.data.get("status") in TERMINAL


class RunWatcher:
    """Non-blocking reader of one run's progress."""

    def __init__(self, run_dir: str | Path, proc=None, liveness_every_s: float = 2.0):
        self.run_dir = Path(run_dir)
        self.proc = proc
        self.liveness_every_s = liveness_every_s
        self.offset = 0
        self.status: dict | None = None
        self.rows: list[dict] = []
        self._last_liveness = 0.0

    @property
    def done(self) -> bool:
        return bool(self.status) and self.status.get("status") in TERMINAL

    def _check_dir(self) -> None:
        if not self.run_dir.is_dir():
            raise RunDeleted(f"run directory {self.run_dir} was deleted while it was being followed")

    def _read_rows(self) -> list[dict]:
        p = self.run_dir / "metrics.jsonl"
        try:
            with open(p, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                if size < self.offset:  # truncated or replaced: start over
                    self.offset = 0
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except (FileNotFoundError, NotADirectoryError):
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []  # nothing complete yet (a partial line stays for the next poll)
        self.offset += end + 1
        rows = []
        for line in chunk[:end].split(b"\n"):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a corrupt line: skip it, as read_metrics does
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def _check_liveness(self) -> None:
        if self.proc is not None:
            self.proc.poll()  # reaps and reconciles when it has ended
            return
        now = time.monotonic()
        if now - self._last_liveness >= self.liveness_every_s:
            self._last_liveness = now
            reconcile(self.run_dir)

    def poll(self) -> list[Event]:
        """Events since the last call: metrics rows first, then the status if it changed."""
        self._check_dir()
        st = read_status(self.run_dir)
        if st is not None and st.get("status") not in TERMINAL:
            self._check_liveness()
            st = read_status(self.run_dir) or st
        rows = self._read_rows()
        self._check_dir()
        events = [Event("metrics", r) for r in rows]
        self.rows.extend(rows)
        if st is not None and st != self.status:
            self.status = st
            events.append(Event("status", st))
        return events


def follow(run_dir: str | Path, poll_s: float = 0.5, *, proc=None) -> Iterator[Event]:
    """Yield the run's events (history first) until its status is terminal.

    Raises `RunDeleted` when the run directory disappears."""
    w = RunWatcher(run_dir, proc=proc)
    while True:
        yield from w.poll()
        if w.done:
            return
        time.sleep(poll_s)
