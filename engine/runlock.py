"""One worker per run directory: an exclusive lock on the run directory itself (engine.oslock:
`flock` where fcntl exists; on Windows, where a directory cannot be opened, on the file
`.runlock` inside it), held by the worker for its whole life.

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
import os
import time
from pathlib import Path

from . import oslock

LOCK_FD_ENV = "PLAYGROUND_RUN_LOCK_FD"


LOCK_FILE = ".runlock"  # only where directories cannot be locked (no fcntl)


def _open_dir(run_dir: str | Path) -> int:
    if oslock.DIRECTORY_LOCKS:
        return os.open(str(run_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if not Path(run_dir).is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(run_dir))
    return os.open(str(Path(run_dir) / LOCK_FILE), os.O_RDWR | os.O_CREAT | getattr(os, "O_NOINHERIT", 0), 0o644)


def try_lock(run_dir: str | Path) -> int | None:
    """An open descriptor holding the run directory's exclusive lock, or None when another
    process holds it. OSError when the directory cannot be opened."""
    fd = _open_dir(run_dir)
    try:
        if oslock.lock(fd, blocking=False):
            return fd
    except OSError:
        os.close(fd)
        raise
    os.close(fd)
    return None


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
        return not oslock.lock(fd, exclusive=False, blocking=False)
    except OSError:
        return False
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
            # the same open file: already ours (a lock held elsewhere is not)
            if (mine.st_dev, mine.st_ino) == (want.st_dev, want.st_ino) and oslock.lock(fd, blocking=False):
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
