"""One worker per run directory: an exclusive `flock` on the run directory itself, held by the
worker for its whole life.

The launcher takes the lock before it touches a run's records, spawns the worker with the
locked descriptor (its number in `PLAYGROUND_RUN_LOCK_FD`) and closes its own copy, so there is
no moment between "the launcher decided to start a worker" and "the worker runs" in which the
run looks free. A worker started by hand (`python -m engine --run-dir DIR`) takes the lock
itself. The lock is released by the kernel when the last process holding it exits, whatever
way it ends. Readers (reconcile, listing) only test it (`is_locked`): a locked run has a live
worker, or a launcher that is starting one.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

LOCK_FD_ENV = "PLAYGROUND_RUN_LOCK_FD"


def _open_dir(run_dir: str | Path) -> int:
    return os.open(str(run_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def try_lock(run_dir: str | Path) -> int | None:
    """An open descriptor holding the run directory's exclusive lock, or None when another
    process holds it. OSError when the directory cannot be opened."""
    fd = _open_dir(run_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def release(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass


def is_locked(run_dir: str | Path) -> bool:
    """Whether some process (a live worker, or a launcher starting one) holds the run's lock.
    Reads only: works on a read-only file system. False when the directory cannot be opened."""
    try:
        fd = _open_dir(run_dir)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)


def adopt_or_lock(run_dir: str | Path, wait_s: float = 1.0) -> int | None:
    """For the worker: the lock its launcher passed down (`PLAYGROUND_RUN_LOCK_FD`, checked to
    be this very directory), else a fresh one. None when another process holds it."""
    raw = os.environ.pop(LOCK_FD_ENV, "")
    if raw.isdigit():
        fd = int(raw)
        try:
            mine, want = os.fstat(fd), os.stat(run_dir)
            if (mine.st_dev, mine.st_ino) == (want.st_dev, want.st_ino):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: already ours
                os.set_inheritable(fd, False)  # env subprocesses must not keep the run locked
                return fd
        except OSError:
            pass
    end = time.monotonic() + wait_s
    while True:  # a reader's probe (is_locked) holds the lock for an instant
        fd = try_lock(run_dir)
        if fd is not None or time.monotonic() >= end:
            return fd
        time.sleep(0.05)
