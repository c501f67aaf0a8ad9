"""Following every run under the runs directory off the UI thread.

`RunsFollower.loop()` runs in a Textual thread worker: every `poll_s` it polls the launch
core's `RunWatcher` of each live run (new metrics rows, status changes, dead workers
reconciled to `failed`), every `scan_s` it looks for run directories that appeared (started
by this TUI, the CLI or a sweep), and it tails the selected run's `engine.log`. What it finds
is posted to the app as `tui.messages` (one message per run and poll), so the UI thread never
waits on a file. Finished runs are read once and then left alone.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from textual.message import Message

from . import core
from .messages import LogLines, MetricsRows, RunFound, RunRemoved, StatusChanged

LOG_FIRST_BYTES = 32 * 1024   # how much of an existing log the tail starts with


class LogTail:
    """Complete new lines of one file, from an offset (the start: its last `LOG_FIRST_BYTES`)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset: int | None = None

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                start = self.offset is None or size < self.offset
                if start:
                    self.offset = max(0, size - LOG_FIRST_BYTES)
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
        except OSError:
            return []
        if start and self.offset > 0:  # began mid-file: drop the partial first line
            cut = chunk.find(b"\n") + 1
            self.offset += cut
            chunk = chunk[cut:]
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return chunk[:end].decode("utf-8", "replace").split("\n")


class RunsFollower:
    def __init__(self, runs_dir: Path, post: Callable[[Message], object], *, poll_s: float = 0.5,
                 scan_s: float = 2.0):
        self.runs_dir = Path(runs_dir)
        self.post = post
        self.poll_s = poll_s
        self.scan_s = scan_s
        self.watchers: dict[str, core.RunWatcher] = {}
        self.finished: set[str] = set()
        self._lock = threading.Lock()
        self._pending: list[tuple[Path, object]] = []
        self._tail_id: str | None = None
        self._tail: LogTail | None = None
        self._tail_reset = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_scan = 0.0

    # --- called from the UI thread -------------------------------------------------------
    def add(self, run_dir: Path, proc=None) -> None:
        """Follow a run this app just launched (with its RunProcess, so that it is reaped)."""
        with self._lock:
            self._pending.append((Path(run_dir), proc))
        self._wake.set()

    def tail(self, run_id: str | None) -> None:
        """Tail this run's engine.log from now on (None: no run)."""
        with self._lock:
            if run_id != self._tail_id:
                self._tail_id = run_id
                self._tail = LogTail(self.runs_dir / run_id / "engine.log") if run_id else None
                self._tail_reset = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # --- the loop (a thread worker) ------------------------------------------------------
    def loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for run_dir, proc in pending:
            self._start(run_dir, proc)
        now = time.monotonic()
        if now - self._last_scan >= self.scan_s:
            self._last_scan = now
            for d in core.run_dirs(self.runs_dir):
                if d.name not in self.watchers:
                    self._start(d, None)
            self._check_vanished()
        for run_id, w in list(self.watchers.items()):
            if run_id not in self.finished:
                self._poll(run_id, w)
        self._poll_tail()

    def _start(self, run_dir: Path, proc) -> None:
        run_id = run_dir.name
        if run_id in self.watchers:
            if proc is not None:
                self.watchers[run_id].proc = proc
            return
        self.watchers[run_id] = core.RunWatcher(run_dir, proc=proc)
        self.post(RunFound(run_id, str(run_dir), core.read_config(run_dir)))
        self._poll(run_id, self.watchers[run_id])

    def _poll(self, run_id: str, w) -> None:
        try:
            events = w.poll()
        except core.RecordError as e:  # deleted while followed
            self.watchers.pop(run_id, None)
            self.finished.discard(run_id)
            self.post(RunRemoved(run_id, str(e)))
            return
        except OSError:
            return  # a transient read problem: the next poll tries again
        rows = [e.data for e in events if e.kind == "metrics"]
        if rows:
            self.post(MetricsRows(run_id, rows))
        for e in events:
            if e.kind == "status":
                st = dict(e.data)
                if st.get("status") == "failed":  # a traceback that escaped the worker's handlers
                    st["worker_out"] = core.worker_out_tail(w.run_dir)
                self.post(StatusChanged(run_id, st))
        if w.done:
            self.finished.add(run_id)

    def _check_vanished(self) -> None:
        """Finished runs are not polled: one whose folder was deleted or moved since is reported
        gone (a live one is, by its watcher's next poll)."""
        for run_id in sorted(self.finished):
            w = self.watchers.get(run_id)
            if w is not None and not w.run_dir.is_dir():
                self.watchers.pop(run_id, None)
                self.finished.discard(run_id)
                self.post(RunRemoved(run_id, f"run directory {w.run_dir} was deleted or moved"))

    def _poll_tail(self) -> None:
        with self._lock:
            tail, run_id, reset = self._tail, self._tail_id, self._tail_reset
            self._tail_reset = False
        if tail is None or run_id is None:
            return
        lines = tail.read()
        w = self.watchers.get(run_id)
        if reset and w is not None and (w.status or {}).get("status") == "failed":
            extra = core.worker_out_tail(w.run_dir)
            lines = lines + (["--- last lines of worker.out ---", *extra] if extra else [])
        if lines or reset:
            self.post(LogLines(run_id, lines, reset=reset))
