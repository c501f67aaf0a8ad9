"""Stopping a run that may have been started by another launcher process.

`stop_run(run_dir, grace_s=10)`: SIGTERM the worker's process group (the worker saves and
ends `stopped`), wait for it to be gone, SIGKILL the group after `grace_s`, and reconcile the
status. Returns the final status dict.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

from engine.records import TERMINAL, RecordError, now_iso, read_status, write_status

from .proc import pid_alive, signal_run_process
from .reconcile import describe_exit, reconcile, worker_pid


def _wait_gone(pid: int, ref: str | None, timeout: float, poll_s: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pid_alive(pid, ref):
            return True
        time.sleep(poll_s)
    return not pid_alive(pid, ref)


def stop_run(run_dir: str | Path, grace_s: float = 10.0) -> dict:
    """Stop the run in `run_dir` cleanly; returns its final status."""
    run_dir = Path(run_dir)
    status = reconcile(run_dir)
    if status is None:
        raise RecordError(f"{run_dir} is not a run directory (no status.json)")
    if status.get("status") in TERMINAL:
        return status
    pid, ref = worker_pid(run_dir, status)
    if pid is None:
        # prepared but never started: nothing to signal
        return write_status(run_dir, "stopped", ended=now_iso(), error="stopped before its worker started")
    try:
        sent = signal_run_process(pid, signal.SIGTERM)
    except PermissionError:
        raise RecordError(f"not allowed to signal the worker of {run_dir.name} (pid {pid}): "
                          "it belongs to another user") from None
    killed = False
    if sent and not _wait_gone(pid, ref, grace_s):
        try:
            signal_run_process(pid, signal.SIGKILL)
        except PermissionError:
            pass
        killed = True
        _wait_gone(pid, ref, 5.0)
    final = read_status(run_dir) or {}
    if final.get("status") not in TERMINAL:
        if killed:
            why = (f"did not stop within {grace_s:g}s of SIGTERM and was killed (SIGKILL); "
                   "progress since its last save is lost")
        else:
            why = f"the worker ({describe_exit(None)}) ended without writing a final status after SIGTERM"
        final = write_status(run_dir, "stopped", ended=now_iso(), error=f"stopped by the launcher: {why}")
    return reconcile(run_dir) or final
