"""Advisory file locks on open descriptors, on every platform Python runs on.

`fcntl.flock` where it exists (Linux, macOS, the BSDs); `msvcrt.locking` on Windows (exclusive
only, on the descriptor's first byte). Importing this module never fails: a platform with
neither (none known) gets `AVAILABLE = False` and locks that always succeed, so that reading
runs, listing and figures still work there. engine/records.py (the experiment log) and
engine/runlock.py (one worker per run directory) lock through here and import no fcntl.
"""
from __future__ import annotations

import errno
import os
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # everything but Windows
    msvcrt = None  # type: ignore[assignment]

AVAILABLE = fcntl is not None or msvcrt is not None
# a directory can be opened (and so locked) only where fcntl exists; elsewhere runlock locks a file
DIRECTORY_LOCKS = fcntl is not None and hasattr(os, "O_DIRECTORY")

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, errno.EDEADLK)


def lock(fd: int, *, exclusive: bool = True, blocking: bool = True) -> bool:
    """Take a lock on open descriptor `fd`; False when `blocking` is off and another process
    holds a conflicting one. Other OSErrors propagate."""
    if fcntl is not None:
        flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except OSError as e:
            if not blocking and e.errno in _BUSY:
                return False
            raise
        return True
    if msvcrt is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError as e:
                if e.errno not in _BUSY:
                    raise
                if not blocking:
                    return False
            time.sleep(0.05)
    return True


def unlock(fd: int) -> None:
    """Release this process's lock on `fd` (closing the descriptor releases it too)."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif msvcrt is not None:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass
