"""Reliability of the launcher and worker (issue 9): stopping only our own worker, ending a
followed run when its worker exits, read-only listing, one worker per run directory, and
refusing up front what the worker would refuse.

The fake worker of tests/test_launcher.py stands in for `python -m engine` where the real one is
not needed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.launcher import prepare_run, start_worker, stop_run
from engine.launcher.proc import is_worker_of, pid_alive, terminate
from engine.records import now_iso, read_status, write_status
from tests.test_launcher import cfg, configure, fake_cmd, wait_for, write_fake_worker


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def worker(tmp_path: Path) -> list[str]:
    return write_fake_worker(tmp_path)


def sleeper(*extra: str) -> subprocess.Popen:
    """An unrelated process (not a worker) in its own session."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *extra],
                            start_new_session=True)


# --- item 6: terminate and stop only our worker ----------------------------------------------

def test_terminate_refuses_a_pid_that_is_not_the_runs_worker(runs: Path):
    other = sleeper()
    try:
        d = prepare_run(cfg(), [], runs_dir=runs)
        assert not is_worker_of(other.pid, d)
        assert terminate(other.pid, 0.2, run_dir=d) is True  # "our worker is not there"
        time.sleep(0.2)
        assert other.poll() is None and pid_alive(other.pid)
    finally:
        other.kill()
        other.wait()


def test_stop_run_kills_nothing_when_status_names_a_foreign_pid_without_start_time(runs: Path):
    other = sleeper()
    try:
        d = prepare_run(cfg(), [], runs_dir=runs)
        write_status(d, "running", pid=other.pid, started=None)
        st = stop_run(d, grace_s=0.5)
        assert other.poll() is None, "stop signalled a process that is not this run's worker"
        assert st["status"] == "stopped" and "not this run's worker" in st["error"]
    finally:
        other.kill()
        other.wait()


def test_stop_run_kills_nothing_for_a_forged_recent_start_time(runs: Path):
    other = sleeper()
    try:
        d = prepare_run(cfg(), [], runs_dir=runs)
        write_status(d, "running", pid=other.pid, started=now_iso())
        stop_run(d, grace_s=0.5)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_terminate_sigkills_our_worker_that_ignores_sigterm(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="hang", iters=1000, sleep=0.05)
    p = subprocess.Popen(fake_cmd(worker, d), start_new_session=True)
    try:
        wait_for(lambda: (read_status(d) or {}).get("status") == "running")
        assert is_worker_of(p.pid, d)
        t0 = time.monotonic()
        assert terminate(p.pid, 0.3, run_dir=d) is True
        assert time.monotonic() - t0 < 5
        assert p.wait(5) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
