"""Reconciling a run's recorded status with reality.

The worker owns `status.json` once it runs. When it dies without writing a terminal status
(killed, out of memory, a crash before its handlers ran), the run would read `running`
forever; `reconcile` marks such a run `failed`, with the exit code when it is known and the
last lines of its log as the error. The launcher also keeps `worker.json` in the run
directory (pid, process group, spawn time, command) so that another launcher process can find
and check the worker even before the worker has written its own status.
"""
from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

from engine.records import TERMINAL, now_iso, read_status, write_status

from .proc import pid_alive

WORKER_FILE = "worker.json"
TAIL_LINES = 12
TAIL_CHARS = 2000


def read_worker_info(run_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / WORKER_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_worker_info(run_dir: str | Path, info: dict) -> None:
    p = Path(run_dir) / WORKER_FILE
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, p)


def worker_pid(run_dir: str | Path, status: dict | None = None) -> tuple[int | None, str | None]:
    """(pid, reference start time) of the run's worker: the status's pid, else the launcher's
    record of what it spawned. The time is when the launcher spawned it (or the status's
    `started`) and guards against a reused pid."""
    status = status if status is not None else (read_status(run_dir) or {})
    info = read_worker_info(run_dir) or {}
    pid = status.get("pid")
    if isinstance(pid, int) and pid > 0:
        ref = info.get("spawned") if info.get("pid") == pid else status.get("started")
        return pid, ref
    if isinstance(info.get("pid"), int):
        return info["pid"], info.get("spawned")
    return None, None


def is_alive(run_dir: str | Path, status: dict | None = None) -> bool:
    """Whether the run's worker is alive. A worker on another host (a Ray node) cannot be
    checked from here and counts as alive."""
    info = read_worker_info(run_dir) or {}
    if info.get("host") and info["host"] != socket.gethostname():
        return True
    pid, ref = worker_pid(run_dir, status)
    return pid_alive(pid, ref)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit code {code})"
    return f"exit code {code}"


def log_tail(run_dir: str | Path, lines: int = TAIL_LINES) -> tuple[str, str]:
    """(file name, last lines) of the most recently written of engine.log and worker.out;
    ('', '') when both are empty or missing. A Python traceback lands in worker.out, the
    worker's own messages in engine.log."""
    cands = []
    for name in ("engine.log", "worker.out"):
        p = Path(run_dir) / name
        try:
            st = p.stat()
        except OSError:
            continue
        if st.st_size > 0:
            cands.append((st.st_mtime, name == "worker.out", p))
    if not cands:
        return "", ""
    _, _, p = max(cands)
    try:
        with open(p, "rb") as f:
            f.seek(max(0, p.stat().st_size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "", ""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return p.name, tail[-TAIL_CHARS:]


def reconcile(run_dir: str | Path, exit_code: int | None = None) -> dict | None:
    """Mark a dead worker's run `failed` when it left no terminal status; returns the status.

    The worker counts as dead when `exit_code` is given (the caller reaped it) or when its pid
    is no longer a live process. A `queued` run with no worker recorded is left alone (it was
    prepared but not started). When the status is already terminal and the exit code was not
    recorded, it is filled in.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        if not run_dir.is_dir():
            return None
        status = {}
    state = status.get("status")
    if state in TERMINAL:
        if exit_code is not None and status.get("exit_code") is None:
            return write_status(run_dir, state, exit_code=exit_code)
        return status
    pid, _ = worker_pid(run_dir, status)
    if exit_code is None:
        if pid is None or is_alive(run_dir, status):
            return status
    # the worker is dead now, so the status cannot change any more: read it again (it may have
    # written its final status between the first read and the liveness check)
    status = read_status(run_dir) or status
    if status.get("status") in TERMINAL:
        if exit_code is not None and status.get("exit_code") is None:
            return write_status(run_dir, status["status"], exit_code=exit_code)
        return status
    name, tail = log_tail(run_dir)
    who = f"worker (pid {pid})" if pid else "worker"
    msg = f"{who} ended without a final status ({describe_exit(exit_code)})"
    if exit_code is None:
        msg = f"{who} is gone without a final status ({describe_exit(exit_code)})"
    if tail:
        msg += f"; last lines of {name}:\n{tail}"
    else:
        msg += "; engine.log and worker.out are empty"
    return write_status(run_dir, "failed", exit_code=exit_code, error=msg, ended=now_iso())
