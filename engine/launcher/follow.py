"""Following a run as it progresses: new metrics rows and status changes.

`RunWatcher(run_dir).poll()` returns the events since the last poll without blocking (the
TUI and the sweep scheduler call it on their own timers); `follow(run_dir)` is the blocking
iterator on top of it, ending after the run's terminal status.

Metrics are read incrementally from a byte offset; only complete lines are consumed, so a
partial last line (the worker mid-write) is picked up on a later poll. Status is read before
metrics in every poll, so when a terminal status is reported every row written before it has
been reported too. A run whose directory is deleted while it is followed raises `RunDeleted`
(a `RecordError` with one clear line). A worker that dies without a terminal status is
reconciled (`failed`), whether this process spawned it (`proc`) or another one did (its pid);
a followed run always ends once its worker has exited, even when no status could be written.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from engine.records import TERMINAL, RecordError, parse_metrics_line, read_status

from .rebuild import has_ended
from .stall import stall_fields
from .reconcile import reconcile


class RunDeleted(RecordError):
    """The run directory disappeared while it was being followed."""


@dataclass
class Event:
    kind: str            # "status" (data = the status dict) or "metrics" (data = one metrics row)
    data: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind == "status" and has_ended(self.data)


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
        self._stall: dict = {}

    @property
    def done(self) -> bool:
        return has_ended(self.status)

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
        except OSError:  # missing yet, or unreadable: nothing new this time
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
            row = parse_metrics_line(line)  # a corrupt line is skipped, as read_metrics does
            if row is not None:
                rows.append(row)
        return rows

    def _check_liveness(self) -> dict | None:
        """The run's status as reconciled when its worker has ended, else None. When this process
        spawned the worker (`proc`), its exit is what counts, whatever status.json says: a worker
        that could not write its final status (a full disk) still ends the run."""
        if self.proc is not None:
            if self.proc.poll() is None:  # reaps and reconciles when it has ended
                return None
            return self.proc.final_status or reconcile(self.run_dir, self.proc.returncode, pid=self.proc.pid)
        now = time.monotonic()
        if now - self._last_liveness >= self.liveness_every_s:
            self._last_liveness = now
            return reconcile(self.run_dir)
        return None

    def _with_stall(self, st: dict | None, fresh: bool) -> dict | None:
        """`st` with `stalled_since` / `stall` (engine.launcher.stall) while the run makes no
        progress; looked at again every `liveness_every_s`, and cleared by new rows."""
        if st is None or st.get("status") != "running":
            self._stall = {}
            return st
        now = time.monotonic()
        if fresh:
            self._stall = {}
        elif now - getattr(self, "_last_stall_check", 0.0) >= self.liveness_every_s:
            self._last_stall_check = now
            self._stall = stall_fields(self.run_dir, st, self.rows)
        return {**st, **self._stall} if self._stall else st

    def poll(self) -> list[Event]:
        """Events since the last call: metrics rows first, then the status if it changed."""
        self._check_dir()
        st = read_status(self.run_dir)
        if st is None or st.get("status") not in TERMINAL:
            settled = self._check_liveness()
            st = read_status(self.run_dir) or st
            if has_ended(settled) and (st or {}).get("status") not in TERMINAL:
                st = settled  # the worker is gone and its final status could not be written
        rows = self._read_rows()
        self._check_dir()
        events = [Event("metrics", r) for r in rows]
        self.rows.extend(rows)
        st = self._with_stall(st, fresh=bool(rows) and self.status is not None)  # the first poll: history
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
