"""Platforms without /proc (macOS) or without fcntl (Windows), simulated on Linux.

`no_proc` makes every /proc read outside psutil fail as it would on macOS (psutil is the one
place that may know how a platform tells process and machine facts; on Linux it reads /proc,
on macOS the kernel's counters). Under it the thread governor still sees the idle cores, `stop`
still stops a run's worker, and the memory check still knows the memory available. Without
fcntl, `import engine.cli.app` works and the experiment log is still written.
"""
import builtins
import dataclasses
import collections
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import runtime
from engine.config import limits
from engine.config.loading import load_config
from engine.launcher.proc import cmdline, is_worker_of, pid_alive
from engine.launcher.stop import stop_run
from engine.records import now_iso, write_status
from tests._procs import started

REPO = Path(__file__).resolve().parents[1]


def _from_psutil(depth: int = 2) -> bool:
    f = sys._getframe(depth)
    while f is not None:
        if f.f_globals.get("__name__", "").startswith("psutil"):
            return True
        f = f.f_back
    return False


@pytest.fixture
def no_proc(monkeypatch):
    """/proc unreadable to everything but psutil."""
    def guard(path) -> None:
        p = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if (p == "/proc" or p.startswith("/proc/")) and not _from_psutil(3):
            raise PermissionError(13, "simulated platform without /proc", p)

    def wrap(fn):
        def inner(path, *a, **k):
            guard(path)
            return fn(path, *a, **k)
        return inner

    for mod, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "readlink"), (os, "listdir"),
                      (os, "stat"), (os, "scandir")):
        monkeypatch.setattr(mod, name, wrap(getattr(mod, name)))


def test_the_simulation_hides_proc(no_proc):
    for read in (lambda: Path("/proc/self/stat").read_text(), lambda: open("/proc/meminfo").read(),
                 lambda: os.readlink("/proc/self/cwd")):
        with pytest.raises(PermissionError):
            read()


MacTimes = collections.namedtuple("MacTimes", "user nice system idle")  # psutil.cpu_times() on macOS


def test_governor_uses_the_idle_cores_without_proc(no_proc, monkeypatch):
    assert isinstance(runtime._busy_seconds(), float)  # the real machine, through psutil
    clock = {"t": 100.0, "busy": 0.0}
    monkeypatch.setattr(runtime.psutil, "cpu_times", lambda: MacTimes(clock["busy"], 0.0, 0.0, 500.0))
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(runtime.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 4)
    gov = runtime.ThreadGovernor(mode="auto", cap=4)
    assert gov.adjust() == 1                    # the first look only starts the window
    clock["t"] += 2.0                           # two quiet seconds: every core idle
    assert gov.adjust() == 4
    clock["t"], clock["busy"] = clock["t"] + 2.0, 2 * 2.0 * 1.0   # others kept two cores busy
    assert gov.adjust() == 2


def test_stop_stops_the_worker_without_proc(no_proc, tmp_path: Path):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    worker = started([sys.executable, "-c", "import time; time.sleep(60)", "--run-dir", str(run_dir)],
                     start_new_session=True)
    try:
        write_status(run_dir, "running", pid=worker.pid, started=now_iso(), ended=None, exit_code=None, error=None)
        assert pid_alive(worker.pid) and cmdline(worker.pid)[-2:] == ["--run-dir", str(run_dir)]
        assert is_worker_of(worker.pid, run_dir) and not is_worker_of(worker.pid, tmp_path / "other")
        final = stop_run(run_dir, grace_s=5)
        assert worker.wait(timeout=10) is not None      # it really ended
        assert final["status"] == "stopped"
        assert not pid_alive(worker.pid)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_memory_check_works_without_proc(no_proc, monkeypatch):
    monkeypatch.delenv(limits.MEM_ENV, raising=False)
    avail = limits.available_memory()
    assert isinstance(avail, int) and avail > 64 * limits.MIB
    cfg = load_config("online-mc16-awr", {}, env=None, seed=0)
    limits.check_fits(cfg)                      # the shipped preset fits
    huge = dataclasses.replace(cfg, num_envs=10 ** 8)      # ~100 GiB of env state and buffers
    with pytest.raises(limits.LimitError, match="at most --num_envs"):
        limits.check_fits(huge)


def test_cli_imports_and_logs_without_fcntl(tmp_path: Path):
    """Windows has no fcntl: the CLI imports, a run directory locks, the experiment log is written."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["fcntl"] = None              # `import fcntl` raises ImportError, as on Windows
        import engine.cli.app
        from engine import oslock, runlock
        from engine.records import append_experiment_log
        assert oslock.fcntl is None and not oslock.DIRECTORY_LOCKS
        p = append_experiment_log("entry\\n", path=r"{tmp_path / 'log.md'}")
        assert p.read_text().endswith("entry\\n")
        fd = runlock.try_lock(r"{tmp_path}")
        assert fd is not None
        runlock.release(fd)
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
