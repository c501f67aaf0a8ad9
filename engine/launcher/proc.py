"""Process liveness and termination for run workers, including workers started by another
launcher process. Process facts come from psutil (Linux, macOS, Windows alike); no /proc.

`pid_alive(pid, started=None)` is true when a process with that pid exists, is not a zombie,
and (when the run's ISO `started` time is known) did not start after the run did: a pid that
was reused by an unrelated, younger process after the worker died counts as dead.

`is_worker_of(pid, run_dir, cmd=None)` checks a live pid's command line against the worker of
that run directory, and `terminate(pid, grace_s, run_dir=...)` is the one way the launcher
stops a worker: SIGTERM to its process group, SIGKILL after `grace_s`, and nothing at all for a
pid that is not that run's worker (a pid taken from a stale or edited `status.json`).
"""
from __future__ import annotations

import datetime as _dt
import os
import signal
import time
from pathlib import Path

import psutil

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def valid_pid(pid: object) -> bool:
    """A positive int that can be a pid (not a bool, not beyond the kernel's pid range)."""
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2 ** 22 + 1


def pid_alive(pid: int | None, started: str | None = None) -> bool:
    """Whether `pid` is a live (non-zombie) process that could be the worker of a run that
    started at `started` (ISO time, seconds precision)."""
    if not valid_pid(pid) or not psutil.pid_exists(pid):  # type: ignore[arg-type]
        return False
    p = _process(pid)  # type: ignore[arg-type]
    if p is None:
        return psutil.pid_exists(pid)  # type: ignore[arg-type]  # exists, but psutil may not look
    try:
        if p.status() in _GONE:
            return False
        proc_start = p.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    t0 = parse_iso(started)
    if t0 is not None and proc_start > t0 + 5.0:
        return False  # a younger process reusing the pid
    return True


def group_of(pid: int) -> int | None:
    """The process group id of `pid`, or None when it is gone (or the platform has none)."""
    try:
        return os.getpgid(pid)
    except (OSError, AttributeError):
        return None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None when it cannot be told (gone, or not ours to read)."""
    p = _process(pid)
    try:
        argv = p.cmdline() if p is not None else None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None
    return [str(a) for a in argv] if argv else None


def _same_dir(arg: str, run_dir: Path, pid: int) -> bool:
    p = Path(arg)
    if not p.is_absolute():
        proc = _process(pid)
        try:
            p = Path(proc.cwd()) / p if proc is not None else None  # type: ignore[assignment]
        except (psutil.Error, OSError):
            return False
        if p is None:
            return False
    try:
        return p.resolve() == run_dir.resolve()
    except OSError:
        return False


def is_worker_of(pid: int | None, run_dir: str | Path, cmd: list[str] | None = None) -> bool:
    """Whether live `pid` is the worker of `run_dir`: its command line is `cmd` (what the launcher
    spawned, from worker.json) or carries `--run-dir <run_dir>`. False for a dead pid, a zombie,
    or a process whose command line cannot be read."""
    if not pid_alive(pid):
        return False
    argv = cmdline(pid)  # type: ignore[arg-type]
    if not argv:
        return False
    if cmd and argv == [str(a) for a in cmd]:
        return True
    run_dir = Path(run_dir)
    for i, a in enumerate(argv):
        if a == "--run-dir" and i + 1 < len(argv) and _same_dir(argv[i + 1], run_dir, pid):  # type: ignore[arg-type]
            return True
        if a.startswith("--run-dir=") and _same_dir(a.split("=", 1)[1], run_dir, pid):  # type: ignore[arg-type]
            return True
    return False


def wait_gone(pid: int, timeout: float, poll_s: float = 0.05) -> bool:
    """Wait up to `timeout` seconds for `pid` to exit (a zombie counts as gone)."""
    end = time.monotonic() + max(0.0, timeout)
    while True:
        if not pid_alive(pid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(poll_s)


MAX_GRACE_S = 600.0  # a stop never waits longer than this before SIGKILL, whatever it was asked


def clamp_grace(grace_s: float) -> float:
    """A grace period in [0, MAX_GRACE_S] (NaN and negatives: 0; inf and huge values: the cap)."""
    try:
        g = float(grace_s)
    except (TypeError, ValueError):
        return 0.0
    return min(g, MAX_GRACE_S) if g > 0 else 0.0  # NaN > 0 is False


def terminate(pid: int | None, grace_s: float = 10.0, *, run_dir: str | Path | None = None,
              cmd: list[str] | None = None, own_child: bool = False) -> bool:
    """Stop a run's worker: SIGTERM its process group (the pid alone when it does not lead one),
    wait up to `grace_s`, then SIGKILL the group; returns whether the worker is gone.

    Refuses to signal anything that is not our worker: unless `own_child` (the caller spawned
    `pid` and has not reaped it, so the pid cannot have been reused), the pid's command line must
    be the worker's for `run_dir` (see `is_worker_of`). A pid that fails the check is left alone
    and counts as gone (the worker it named is not running there). Raises PermissionError when
    the worker belongs to another user."""
    grace_s = clamp_grace(grace_s)
    if not valid_pid(pid) or pid == os.getpid():
        return True
    if not pid_alive(pid):
        _kill_leftovers(pid, own_child)
        return True
    if not own_child and (run_dir is None or not is_worker_of(pid, run_dir, cmd)):
        return True
    pgid = group_of(pid)
    leads = pgid == pid
    _send(pid, signal.SIGTERM, leads)
    if not wait_gone(pid, grace_s):
        _send(pid, signal.SIGKILL, leads)
        wait_gone(pid, 5.0)
    _kill_leftovers(pid, own_child or leads)
    return not pid_alive(pid)


def _send(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _kill_leftovers(pid: int, group_is_ours: bool) -> None:
    """SIGKILL what is left of the worker's own process group (its env subprocesses) once the
    worker itself has ended, so that nothing is orphaned. Only for a group the worker led."""
    if not group_is_ours:
        return
    try:
        if group_of(pid) in (None, pid):
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
