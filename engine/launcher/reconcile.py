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
import signal
import socket
from pathlib import Path

from engine.records import TERMINAL, atomic_write, now_iso, read_status, write_status
from engine.run_files import planned_iterations, read_config
from engine.runlock import is_locked, release, try_lock

from .proc import cmdline, is_worker_of, pid_alive, valid_pid
from .rebuild import status_unreadable, unreadable_status

WORKER_FILE = "worker.json"
GONE_PREFIX = "worker gone:"  # how a dead worker's error starts (listings label such runs)
TAIL_LINES = 12
TAIL_CHARS = 2000


def read_worker_info(run_dir: str | Path) -> dict | None:
    try:
        data = json.loads((Path(run_dir) / WORKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_worker_info(run_dir: str | Path, info: dict) -> None:
    atomic_write(Path(run_dir) / WORKER_FILE, json.dumps(info, indent=1))


def worker_pid(run_dir: str | Path, status: dict | None = None) -> tuple[int | None, str | None]:
    """(pid, reference start time) of the run's worker: the status's pid, else the launcher's
    record of what it spawned. The time is when the launcher spawned it (or the status's
    `started`) and guards against a reused pid."""
    status = status if status is not None else (read_status(run_dir) or {})
    info = read_worker_info(run_dir) or {}
    pid = status.get("pid")
    if valid_pid(pid):
        ref = info.get("spawned") if info.get("pid") == pid else status.get("started")
        return pid, ref if isinstance(ref, str) else None
    if valid_pid(info.get("pid")):
        ref = info.get("spawned")
        return info["pid"], ref if isinstance(ref, str) else None
    return None, None


def is_alive(run_dir: str | Path, status: dict | None = None, *, lock: bool = True) -> bool:
    """Whether the run's worker is alive: something holds the run's lock (engine.runlock), or its
    recorded pid is a live process whose command line is this run's worker (a pid reused by an
    unrelated process, or forged into status.json, does not count). A worker on another host (a
    Ray node) cannot be checked from here and counts as alive. `lock=False` looks at the pid
    only."""
    info = read_worker_info(run_dir) or {}
    if isinstance(info.get("host"), str) and info["host"] and info["host"] != socket.gethostname():
        return True
    if lock and is_locked(run_dir):
        return True
    pid, ref = worker_pid(run_dir, status)
    if not pid_alive(pid, ref):
        return False
    if cmdline(pid) is None:  # type: ignore[arg-type]
        return True  # /proc cannot tell: trust the pid
    return is_worker_of(pid, run_dir, info.get("cmd") if info.get("pid") == pid else None)


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


def worker_out_tail(run_dir: str | Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines the worker's latest start wrote to worker.out (after the launcher's `---`
    header) when they hold a Python traceback or an error, else []: what a crash that escaped
    the worker's own handlers left (engine.log never sees it)."""
    try:
        with open(Path(run_dir) / "worker.out", "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    out = text.rsplit("\n--- ", 1)[-1].splitlines()
    out = out[1:] if out and out[0].startswith(("--- ", "20")) and "launcher pid" in out[0] else out
    out = [x for x in out if x.strip()]
    if not any("Traceback" in x or "Error" in x or x.startswith("error:") for x in out):
        return []
    return out[-lines:]


def reconcile(run_dir: str | Path, exit_code: int | None = None, *, pid: int | None = None,
              write: bool = True) -> dict | None:
    """Mark a dead worker's run `failed` when it left no terminal status; returns the status.

    The worker counts as dead when `exit_code` is given (the caller reaped worker `pid`) or when
    nothing holds the run's lock and its pid is no longer its live worker. A `queued` run with no
    worker recorded is left alone (it was prepared but not started), and so is a run that
    another worker has taken over since `pid` was started (a resume). When the status is already
    terminal and the exit code was not recorded, it is filled in.

    `write=False` (listing) computes the same answer without writing anything. With `write=True`
    a status that cannot be written (a full or read-only disk) is returned all the same, its
    error saying it was not saved: a caller never gets stuck on a run whose worker is gone.

    A status.json that exists but cannot be read is never overwritten with less: the status is
    rebuilt from engine.log / metrics.jsonl (saying so, the old file kept aside), or the file is
    left alone and the run reads `unreadable` (engine.launcher.rebuild).
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        if not run_dir.is_dir():
            return None
        if status_unreadable(run_dir):  # evidence we cannot read: rebuild it or leave it
            return _unreadable(run_dir, exit_code, pid, write)
        status = {}
    rec_pid, _ = worker_pid(run_dir, status)
    if exit_code is not None and pid is not None and rec_pid is not None and rec_pid != pid:
        return status  # the run belongs to a newer worker now
    if status.get("status") in TERMINAL:
        return _fill_exit_code(run_dir, status, exit_code, write)
    if exit_code is None:
        if rec_pid is None:
            if status.get("status") in (None, "queued") or is_locked(run_dir):
                return status  # prepared and not started yet, or a launcher is starting it
            # 'running' with no usable pid (missing, forged, out of range): no worker to be found
        elif is_alive(run_dir, status):
            return status
    if exit_code is not None and is_locked(run_dir):
        return status  # a new worker (a resume) holds the run already
    fd = None
    if write:
        try:
            fd = try_lock(run_dir)
        except OSError:
            fd = None
        else:
            if fd is None:
                return status  # a launcher is starting a worker on it right now
    try:
        # the worker is dead now, so the status cannot change any more: read it again (it may have
        # written its final status between the first read and the liveness check)
        status = read_status(run_dir) or status
        if status.get("status") in TERMINAL:
            return _fill_exit_code(run_dir, status, exit_code, write)
        return save_status(run_dir, status, write, "failed", exit_code=exit_code, ended=now_iso(),
                     error=gone_message(run_dir, rec_pid, exit_code))
    finally:
        release(fd)


def _unreadable(run_dir: Path, exit_code: int | None, pid: int | None, write: bool) -> dict:
    alive = exit_code is None and (is_locked(run_dir) or is_alive(run_dir, {}))
    fd = None
    if write and not alive:
        try:
            fd = try_lock(run_dir)
        except OSError:
            fd = None
        write = fd is not None
    try:
        st = unreadable_status(run_dir, alive=alive, write=write, planned=planned_iterations(read_config(run_dir)))
    finally:
        release(fd)
    if exit_code is not None and st.get("status") != "done":
        st["exit_code"] = st.get("exit_code") if st.get("exit_code") is not None else exit_code
    return st


def gone_message(run_dir: Path, pid: int | None, exit_code: int | None) -> str:
    """Why a run whose worker ended without a final status failed, with its log's last lines."""
    name, tail = log_tail(run_dir)
    who = f"worker (pid {pid})" if pid else "worker"
    if exit_code is None:
        msg = f"{GONE_PREFIX} the {who} is gone without a final status ({describe_exit(exit_code)})"
    else:
        msg = f"{who} ended without a final status ({describe_exit(exit_code)})"
    if tail:
        return msg + f"; last lines of {name}:\n{tail}"
    return msg + "; engine.log and worker.out are empty"


def _fill_exit_code(run_dir: Path, status: dict, exit_code: int | None, write: bool) -> dict:
    if exit_code is not None and status.get("exit_code") is None:
        return save_status(run_dir, status, write, status["status"], exit_code=exit_code)
    return status


def save_status(run_dir: Path, status: dict, write: bool, state: str, **fields) -> dict:
    """write_status, or (not writing, or the write failed) the same dict in memory: the caller
    gets the run's status either way and never an OSError from a full or read-only disk."""
    if write:
        try:
            return write_status(run_dir, state, **fields)
        except OSError as e:
            fields["error"] = (f"{fields.get('error') or status.get('error') or ''} "
                               f"(status.json could not be updated: {e.strerror or e})").strip()
    out = dict(status)
    out.update(fields)
    out["status"] = state
    return out
