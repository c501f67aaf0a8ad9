"""Test helper: start a stand-in process and return once its command line can be read.

`Popen` returns as soon as the child's exec has dropped the parent's memory, before the kernel
has set up the new program's arguments: for that moment /proc/PID/cmdline (psutil's
`cmdline()`) is empty, and the launcher treats a live pid whose command line it cannot read as
possibly its worker. On a loaded machine a test that checks right away can land in that
window (measured on this 2-core machine with four busy loops beside it: 27 of 69,277 `Popen`
calls read an empty command line right after returning), so tests that hand such a process to
the launcher wait for its arguments first."""
from __future__ import annotations

import subprocess
import time

import psutil


def started(argv: list[str], timeout: float = 30.0, **popen_kwargs) -> subprocess.Popen:
    p = subprocess.Popen(argv, **popen_kwargs)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if psutil.Process(p.pid).cmdline():
                return p
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return p  # it already ended: the test sees that itself
        time.sleep(0.01)
    p.kill()
    p.wait()
    raise AssertionError(f"{argv}: no command line readable after {timeout:g} s")
