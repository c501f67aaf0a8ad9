"""Process liveness for run workers, including workers started by another launcher process.

`pid_alive(pid, started=None)` is true when a process with that pid exists, is not a zombie,
and (when the run's ISO `started` time is known) did not start after the run did: a pid that
was reused by an unrelated, younger process after the worker died counts as dead.
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
from pathlib import Path

_BOOT_TIME: float | None = None


def _boot_time() -> float | None:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        try:
            for line in Path("/proc/stat").read_text().splitlines():
                if line.startswith("btime "):
                    _BOOT_TIME = float(line.split()[1])
                    break
        except OSError:
            return None
    return _BOOT_TIME


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time as a unix timestamp) from /proc, or None when unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after the last ')'
    rest = raw[raw.rfind(")") + 2:].split()
    state = rest[0] if rest else "?"
    start = None
    try:
        ticks = int(rest[19])  # field 22 (starttime), counted from field 3
        boot = _boot_time()
        if boot is not None:
            start = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, OSError):
        pass
    return state, start


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def pid_alive(pid: int | None, started: str | None = None) -> bool:
    """Whether `pid` is a live (non-zombie) process that could be the worker of a run that
    started at `started` (ISO time, seconds precision)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        if e.errno != errno.EPERM:  # EPERM: exists, owned by someone else
            return False
    st = _proc_stat(pid)
    if st is None:
        return True
    state, proc_start = st
    if state in ("Z", "X", "x"):
        return False
    t0 = parse_iso(started)
    if t0 is not None and proc_start is not None and proc_start > t0 + 5.0:
        return False  # a younger process reusing the pid
    return True


def group_of(pid: int) -> int | None:
    """The process group id of `pid`, or None when it is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def signal_run_process(pid: int, sig: int) -> bool:
    """Send `sig` to the worker's process group when the worker leads its own group (as
    `start_worker` arranges), otherwise to the pid alone. False when it is already gone."""
    pgid = group_of(pid)
    if pgid is None:
        return False
    try:
        if pgid == pid:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        raise
