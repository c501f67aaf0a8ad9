"""Stopping a run that may have been started by another launcher process.

`stop_run(run_dir, grace_s=10)`: SIGTERM the worker's process group (the worker saves and
ends `stopped`), wait for it to be gone, SIGKILL the group after `grace_s`, and reconcile the
status. Returns the final status dict.
"""
from __future__ import annotations

import time
from pathlib import Path

from engine.records import TERMINAL, RecordError, now_iso, read_status, write_status

from .proc import clamp_grace, is_worker_of, terminate
from .reconcile import describe_exit, read_worker_info, reconcile, worker_pid


def stop_run(run_dir: str | Path, grace_s: float = 10.0) -> dict:
    """Stop the run in `run_dir` cleanly; returns its final status."""
    run_dir = Path(run_dir)
    grace_s = clamp_grace(grace_s)
    status = reconcile(run_dir)
    if status is None:
        raise RecordError(f"{run_dir} is not a run directory (no status.json)")
    if status.get("status") in TERMINAL:
        return status
    if (read_worker_info(run_dir) or {}).get("launcher") == "ray":
        # lazy: 2-15 ms of every front's start (-X importtime) that only a Ray run's stop needs
        from .distributed.run_records import stop_ray_run

        return stop_ray_run(run_dir, grace_s)  # its worker is on a Ray node: the sweep cancels the task
    pid, ref = worker_pid(run_dir, status)
    if pid is None:
        # prepared but never started: nothing to signal
        return write_status(run_dir, "stopped", ended=now_iso(), error="stopped before its worker started")
    info = read_worker_info(run_dir) or {}
    cmd = info.get("cmd") if info.get("pid") == pid and isinstance(info.get("cmd"), list) else None
    ours = is_worker_of(pid, run_dir, cmd)
    t0 = time.monotonic()
    try:
        terminate(pid, grace_s, run_dir=run_dir, cmd=cmd)
    except PermissionError:
        raise RecordError(f"not allowed to signal the worker of {run_dir.name} (pid {pid}): "
                          "it belongs to another user") from None
    killed = ours and time.monotonic() - t0 >= grace_s
    final = read_status(run_dir) or {}
    if final.get("status") not in TERMINAL:
        if killed:
            why = (f"did not stop within {grace_s:g}s of SIGTERM and was killed (SIGKILL); "
                   "progress since its last save is lost")
        elif not ours:
            why = f"pid {pid} is not this run's worker (nothing was signalled): the worker is gone"
        else:
            why = f"the worker ({describe_exit(None)}) ended without writing a final status after SIGTERM"
        final = write_status(run_dir, "stopped", ended=now_iso(), error=f"stopped by the launcher: {why}")
    return reconcile(run_dir) or final
