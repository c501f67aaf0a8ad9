"""Live stall detection: a `running` run whose worker makes no progress, as listings, `show`,
the follow watcher and the TUI show it (`stalled since HH:MM:SS`).

What "stalled" means is defined once, on the floor below, in `engine.doctor.stall` (the run
doctor's DOC11 uses the same definition): no write to the run's records for far longer than its
own iteration time. This module adds what only the launcher can see: the worker's process state
(psutil), where the worker runs on this host, so that a worker stopped with SIGSTOP (its pid
alive, its status `running` for ever) is stalled at once. A worker on another host (a Ray node)
is judged by its streamed records only.
"""
from __future__ import annotations

import socket
from pathlib import Path

from engine.doctor.stall import (FIRST_ROW_S, PROGRESS_FILES, STALL_FACTOR, STALL_MIN_S, Stall,  # noqa: F401
                                 iteration_seconds, judge_stall, last_progress)

from .reconcile import read_worker_info

try:  # process state; without psutil only the records' progress is judged
    import psutil
except ImportError:  # pragma: no cover - psutil ships with the test extras
    psutil = None


def process_state(pid: object) -> str | None:
    """psutil's status of a local process ('running', 'sleeping', 'stopped', ...), or None."""
    if psutil is None or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        return psutil.Process(pid).status()
    except (psutil.Error, OSError, ValueError):
        return None


def _local(worker_info: dict | None) -> bool:
    host = (worker_info or {}).get("host")
    return not isinstance(host, str) or not host or host == socket.gethostname()


def detect_stall(run_dir: str | Path, status: dict, rows: list[dict], *, worker_info: dict | None = None,
                 now: float | None = None) -> Stall | None:
    """The run's stall, or None when it is not `running` or shows progress (engine.doctor.stall)."""
    if (status or {}).get("status") != "running":
        return None
    state = process_state(status.get("pid")) if _local(worker_info) else None
    return judge_stall(status, rows, last_progress(run_dir), now=now, process_state=state)


def stall_fields(run_dir: str | Path, status: dict, rows: list[dict], *, now: float | None = None) -> dict:
    """`{"stalled_since": label, "stall": label with why}` for a stalled run, else {}: what a
    status shown in a listing, `show` or the TUI carries on top of status.json."""
    if (status or {}).get("status") != "running":
        return {}
    stall = detect_stall(run_dir, status, rows, worker_info=read_worker_info(run_dir), now=now)
    return {"stalled_since": stall.label(), "stall": stall.describe()} if stall else {}
