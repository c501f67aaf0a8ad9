"""The launcher (engine.launcher): preparing runs, spawning / following / stopping workers,
reconciling dead ones and listing runs started by other processes.

A small fake worker (FAKE_WORKER, written into tmp_path) stands in for `python -m engine`: it
writes status.json and metrics.jsonl like the real worker and handles SIGTERM, so these tests
are fast and deterministic. Its behaviour comes from `fake.json` in the run directory (or $FAKE_WORKER_OPTS).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config.schema import RunConfig
from engine.launcher import (RunDeleted, RunWatcher, follow, list_runs, pid_alive, prepare_run, reconcile,
                             resolve_run, start_worker, stop_run)
from engine.launcher.sweep import (Job, Scheduler, SweepError, grid_points, mean_std, parse_grid, parse_seeds,
                                   point_stats)
from engine.records import RecordError, now_iso, read_metrics, read_status, write_status
from tests._procs import started

FAKE_WORKER = r'''
import json, os, signal, sys, time
from pathlib import Path
sys.path.insert(0, REPO)
from engine.records import now_iso, write_status

args = sys.argv[1:]
run_dir = Path(args[args.index("--run-dir") + 1])
resume = "--resume" in args
opts = {"mode": "normal", "iters": 3, "sleep": 0.05}
opts.update(json.loads(os.environ.get("FAKE_WORKER_OPTS") or "{}"))
if (run_dir / "fake.json").exists():
    opts.update(json.loads((run_dir / "fake.json").read_text()))
stop = {"flag": False}
if opts["mode"] == "hang":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda s, f: stop.update(flag=True))
write_status(run_dir, "running", pid=os.getpid(), started=now_iso(), ended=None, exit_code=None, error=None)
log = open(run_dir / "engine.log", "a")
log.write("fake worker started\n"); log.flush()
if opts["mode"] == "die":
    log.write("boom: simulated out-of-memory\n"); log.flush()
    os._exit(3)
start = 0
if resume:
    start = sum(1 for _ in open(run_dir / "metrics.jsonl")) if (run_dir / "metrics.jsonl").exists() else 0
with open(run_dir / "metrics.jsonl", "a") as m:
    for it in range(start, opts["iters"]):
        if stop["flag"]:
            write_status(run_dir, "stopped", exit_code=143)
            sys.exit(143)
        row = {"iteration": it, "env_steps": 1000 * it, "wall_s": 0.1 * it, "sr": min(1.0, 0.3 + 0.2 * it),
               "sr_at_end": 0.2}
        m.write(json.dumps(row) + "\n"); m.flush()
        t_end = time.time() + opts["sleep"]
        while time.time() < t_end and not stop["flag"]:
            time.sleep(0.01)
if stop["flag"]:
    write_status(run_dir, "stopped", exit_code=143)
    sys.exit(143)
write_status(run_dir, "done", exit_code=0)
'''


def write_fake_worker(tmp_path: Path) -> list[str]:
    """The fake worker script in tmp_path; returns the command prefix that runs it."""
    repo = str(Path(__file__).resolve().parent.parent)
    p = tmp_path / "fake_worker.py"
    p.write_text(f"REPO = {repo!r}\n" + FAKE_WORKER)
    return [sys.executable, str(p)]


def fake_cmd(prefix: list[str], run_dir: Path, resume: bool = False) -> list[str]:
    return prefix + ["--run-dir", str(run_dir)] + (["--resume"] if resume else [])


def configure(run_dir: Path, **opts) -> None:
    (run_dir / "fake.json").write_text(json.dumps(opts))


def wait_for(pred, timeout: float = 10.0, poll: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


def reaped(pid: int) -> bool:
    """True when `pid` is no child of ours any more (reaped: no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def worker(tmp_path: Path) -> list[str]:
    return write_fake_worker(tmp_path)


def cfg(**kw) -> RunConfig:
    c = RunConfig(checkpoint="none", exp_name="fake-run", preset="test", **kw)
    return c


# --- preparing ------------------------------------------------------------------------------

def test_prepare_run_writes_config_findings_and_queued_status(runs: Path):
    import tomllib

    c = cfg(gamma=0.9)
    c.command = "playground run test --gamma 0.9"
    d = prepare_run(c, [{"id": "KB10", "severity": "warning", "title": "t", "why": "w", "fix": {"gamma": 0.8}}],
                    runs_dir=runs)
    assert d.parent == runs and d.name.endswith("-fake-run")
    conf = tomllib.loads((d / "config.toml").read_text())
    assert conf["gamma"] == 0.9 and conf["command"] == "playground run test --gamma 0.9"
    assert set(conf) == set(c.to_dict())
    assert json.loads((d / "findings.json").read_text())[0]["id"] == "KB10"
    st = read_status(d)
    assert st["status"] == "queued" and st["pid"] is None and st["exit_code"] is None


def test_two_runs_prepared_in_the_same_second_get_distinct_ids(runs: Path):
    dirs = [prepare_run(cfg(), [], runs_dir=runs) for _ in range(6)]
    assert len({d.name for d in dirs}) == 6
    assert all(read_status(d)["status"] == "queued" for d in dirs)


def test_prepare_run_in_unusable_runs_dir_is_a_record_error(tmp_path: Path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(RecordError, match="runs directory"):
        prepare_run(cfg(), [], runs_dir=f / "runs")


# --- start / follow / stop -----------------------------------------------------------------

def test_start_follow_until_done_and_child_is_reaped(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=4, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    events = list(follow(d, poll_s=0.02, proc=proc))
    rows = [e.data for e in events if e.kind == "metrics"]
    statuses = [e.data["status"] for e in events if e.kind == "status"]
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    assert statuses[-1] == "done" and events[-1].terminal
    assert proc.wait(timeout=10) == 0
    assert reaped(proc.pid)
    info = json.loads((d / "worker.json").read_text())
    assert info["pid"] == proc.pid and info["cmd"][-2:] == ["--run-dir", str(d)]
    assert (d / "worker.out").exists()


def test_stop_ends_stopped_and_reaps_the_child(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    wait_for(lambda: len(read_metrics(d)) >= 2)
    rc = proc.stop(grace_s=5)
    assert rc == 143
    st = read_status(d)
    assert st["status"] == "stopped" and st["exit_code"] == 143 and st["ended"]
    assert reaped(proc.pid)
    assert not pid_alive(proc.pid)


def test_stop_kills_a_worker_that_ignores_sigterm_after_the_grace_period(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="hang", iters=1000, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    wait_for(lambda: len(read_metrics(d)) >= 1)
    t0 = time.monotonic()
    rc = proc.stop(grace_s=0.5)
    assert time.monotonic() - t0 < 5
    assert rc == -signal.SIGKILL
    st = read_status(d)
    assert st["status"] == "stopped" and "SIGKILL" in st["error"]
    assert reaped(proc.pid)


def test_context_manager_stops_the_worker_unless_detached(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    with start_worker(d, worker_cmd=fake_cmd(worker, d)) as proc:
        wait_for(lambda: (read_status(d) or {}).get("status") == "running")
    assert proc.returncode == 143 and read_status(d)["status"] == "stopped"


def test_worker_that_dies_without_status_is_marked_failed_with_exit_code_and_log_tail(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="die")
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    assert proc.wait(timeout=10) == 3
    st = read_status(d)
    assert st["status"] == "failed" and st["exit_code"] == 3
    assert "exit code 3" in st["error"] and "boom: simulated out-of-memory" in st["error"]
    assert reaped(proc.pid)


def test_follow_reconciles_a_worker_that_dies(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="die")
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    events = list(follow(d, poll_s=0.02, proc=proc))
    assert events[-1].data["status"] == "failed" and events[-1].data["exit_code"] == 3


def test_resume_continues_a_stopped_run(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    wait_for(lambda: len(read_metrics(d)) >= 2)
    proc.stop(grace_s=5)
    n = len(read_metrics(d))
    configure(d, iters=n + 2, sleep=0.01)
    with pytest.raises(RecordError, match="not queued"):
        start_worker(d, worker_cmd=fake_cmd(worker, d))
    proc2 = start_worker(d, resume=True, worker_cmd=fake_cmd(worker, d, resume=True))
    assert read_status(d)["status"] in ("queued", "running")
    assert [e.data["status"] for e in follow(d, poll_s=0.02, proc=proc2) if e.kind == "status"][-1] == "done"
    assert proc2.wait(timeout=10) == 0
    assert [r["iteration"] for r in read_metrics(d)] == list(range(n + 2))


def test_start_worker_refuses_a_run_that_is_still_running(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    with start_worker(d, worker_cmd=fake_cmd(worker, d)):
        wait_for(lambda: (read_status(d) or {}).get("status") == "running")
        with pytest.raises(RecordError, match="already running"):
            start_worker(d, resume=True, worker_cmd=fake_cmd(worker, d, resume=True))


# --- runs started by another process -------------------------------------------------------

def hand_written_run(runs: Path, name: str, status: str, pid: int | None, rows: list[dict] = (),
                     started: str | None = None) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text('preset = "gae-ppo"\nexp_name = "by-hand"\nregime = "online"\n'
                                   "total_timesteps = 10000\nnum_envs = 10\nnum_steps = 100\n")
    write_status(d, status, pid=pid, started=started or now_iso(), ended=None, exit_code=None, error=None)
    with open(d / "metrics.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return d


def lookalike(run_dir: Path) -> subprocess.Popen:
    """A process whose command line is a worker's for `run_dir` (liveness checks read
    /proc/PID/cmdline; a pid that is not this run's worker counts as gone)."""
    return started([sys.executable, "-c", "import time; time.sleep(60)", "--run-dir", str(run_dir)])


def end(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_list_runs_sees_runs_of_other_processes_and_reconciles_dead_ones(runs: Path):
    sleeper = lookalike(runs / "20250101-000000-alive")
    try:
        rows = [{"iteration": i, "env_steps": 1000 * i, "wall_s": 1.0 * i, "sr": sr, "sr_at_end": sr}
                for i, sr in enumerate([0.4, 0.9, 0.7])]
        hand_written_run(runs, "20250101-000000-alive", "running", sleeper.pid, rows)
        dead = hand_written_run(runs, "20250101-000001-dead", "running", dead_pid())
        (dead / "engine.log").write_text("iteration 7\nKilled: out of memory\n")
        (runs / "not-a-run").mkdir()
        got = {r.id: r for r in list_runs(runs)}
        assert set(got) == {"20250101-000000-alive", "20250101-000001-dead"}
        alive = got["20250101-000000-alive"]
        assert alive.status == "running" and alive.preset == "gae-ppo" and alive.exp_name == "by-hand"
        assert (alive.iteration, alive.env_steps, alive.last_sr, alive.peak_sr) == (2, 2000, 0.7, 0.9)
        assert alive.peak_env_steps == 1000 and alive.planned_iterations == 10
        d = got["20250101-000001-dead"]
        assert d.status == "failed" and "out of memory" in d.error and d.exit_code is None
        sleeper.kill()
        sleeper.wait()
        assert {r.id: r.status for r in list_runs(runs)}["20250101-000000-alive"] == "failed"
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_list_runs_of_missing_dir_is_empty_and_of_a_file_is_an_error(tmp_path: Path):
    assert list_runs(tmp_path / "nope") == []
    (tmp_path / "f").write_text("")
    with pytest.raises(RecordError):
        list_runs(tmp_path / "f")


def test_reconcile_leaves_live_and_unstarted_runs_alone(runs: Path):
    w = lookalike(runs / "r-live")
    try:
        d = hand_written_run(runs, "r-live", "running", w.pid)
        assert reconcile(d)["status"] == "running"
    finally:
        end(w)
    q = prepare_run(cfg(), [], runs_dir=runs)
    assert reconcile(q)["status"] == "queued"


def test_pid_alive_guards_against_a_reused_pid():
    assert pid_alive(os.getpid(), now_iso())
    assert not pid_alive(os.getpid(), "2000-01-01T00:00:00+00:00")  # a process younger than the run
    assert not pid_alive(dead_pid())
    assert not pid_alive(None) and not pid_alive(0)


def test_stop_run_stops_a_worker_started_by_another_process(runs: Path, worker: list[str]):
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    # "another launcher": a plain Popen in its own session, not a RunProcess
    other = subprocess.Popen(fake_cmd(worker, d), start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (read_status(d) or {}).get("status") == "running")
        st = stop_run(d, grace_s=5)
        assert st["status"] == "stopped" and st["exit_code"] == 143
    finally:
        other.wait(timeout=10)


def test_stop_run_of_an_unstarted_or_finished_run(runs: Path):
    q = prepare_run(cfg(), [], runs_dir=runs)
    assert stop_run(q)["status"] == "stopped"
    assert stop_run(q)["status"] == "stopped"  # idempotent


# --- following ------------------------------------------------------------------------------

def test_follow_ends_with_a_clear_message_when_the_run_directory_is_deleted(runs: Path):
    w = lookalike(runs / "r-del")
    try:
        d = hand_written_run(runs, "r-del", "running", w.pid, [{"iteration": 0, "env_steps": 0, "sr": 0.1}])
        it = follow(d, poll_s=0.01)
        first = next(it)
        assert first.kind == "metrics"
        shutil.rmtree(d)
        with pytest.raises(RunDeleted, match="was deleted while it was being followed"):
            for _ in it:
                pass
    finally:
        end(w)


def test_partial_last_metrics_line_is_picked_up_once_complete(runs: Path):
    w = lookalike(runs / "r-partial")
    d = hand_written_run(runs, "r-partial", "running", w.pid)
    with open(d / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"iteration": 0, "env_steps": 0, "sr": 0.1}) + "\n")
        f.write('{"iteration": 1, "env_st')
    watcher = RunWatcher(d)
    ev = watcher.poll()
    assert [e.data["iteration"] for e in ev if e.kind == "metrics"] == [0]
    assert [r["iteration"] for r in read_metrics(d)] == [0]
    assert watcher.poll() == []  # still partial: nothing new
    with open(d / "metrics.jsonl", "a") as f:
        f.write('eps": 1000, "sr": 0.2}\n')
    assert [e.data["iteration"] for e in watcher.poll() if e.kind == "metrics"] == [1]
    write_status(d, "done", exit_code=0)
    end(w)
    ev = watcher.poll()
    assert ev[-1].terminal and watcher.done


def test_watcher_reports_a_dead_worker_of_another_process(runs: Path):
    d = hand_written_run(runs, "r-dead", "running", dead_pid())
    events = list(follow(d, poll_s=0.01))
    assert events[-1].data["status"] == "failed"


# --- resolving run references ---------------------------------------------------------------

def test_resolve_run_by_id_prefix_name_and_path(runs: Path):
    a = hand_written_run(runs, "20250101-120000-gae-ppo", "done", None)
    hand_written_run(runs, "20250101-120001-mc16", "done", None)
    assert resolve_run("20250101-120000-gae-ppo", runs) == a
    assert resolve_run("20250101-120000", runs) == a
    assert resolve_run("gae-ppo", runs) == a
    assert resolve_run(str(a), runs) == a
    with pytest.raises(RecordError, match="matches 2 runs"):
        resolve_run("20250101-12000", runs)
    with pytest.raises(RecordError, match="no run matches"):
        resolve_run("zzz", runs)


# --- sweeps ---------------------------------------------------------------------------------

def test_sweep_argument_parsing():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5-6") == [0, 2, 5, 6]
    for bad in ("", "a-b", "4-1", "x"):
        with pytest.raises(SweepError):
            parse_seeds(bad)
    assert parse_grid(["gamma=0.8,0.9", "--mc-samples=4,16"]) == {"gamma": ["0.8", "0.9"], "mc_samples": ["4", "16"]}
    with pytest.raises(SweepError):
        parse_grid(["gamma"])
    assert grid_points({"a": ["1", "2"], "b": ["x"]}) == [{"a": "1", "b": "x"}, {"a": "2", "b": "x"}]
    assert grid_points({}) == [{}]
    m, s = mean_std([0.8, 0.9, 1.0])
    assert m == pytest.approx(0.9) and s == pytest.approx(0.1)
    assert mean_std([0.5]) == (0.5, 0.0) and mean_std([]) == (None, None)


def test_scheduler_runs_jobs_with_at_most_n_at_once(runs: Path, worker: list[str], monkeypatch):
    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(worker))
    jobs = []
    for s in range(4):
        def make(s=s):
            d = prepare_run(cfg(seed=s), [], runs_dir=runs, name=f"sweep-s{s}")
            configure(d, iters=3, sleep=0.05)
            return d
        jobs.append(Job(point={"gamma": "0.9"}, seed=s, prepare=make))
    sched = Scheduler(jobs, parallel=2)
    most = 0
    t_end = time.monotonic() + 30
    while not sched.finished and time.monotonic() < t_end:
        sched.step()
        most = max(most, len(sched.active))
        time.sleep(0.02)
    assert sched.finished and most == 2
    assert all(j.summary.status == "done" for j in jobs)
    assert all(reaped(j.handle.pid) for j in jobs)
    st = point_stats([j.summary for j in jobs])
    assert st["n"] == 4 and st["n_done"] == 4 and st["peak_sr_mean"] == pytest.approx(0.7)


def test_scheduler_stop_all_stops_active_and_skips_waiting(runs: Path, worker: list[str], monkeypatch):
    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(worker))
    jobs = []
    for s in range(3):
        def make(s=s):
            d = prepare_run(cfg(seed=s), [], runs_dir=runs, name=f"stop-s{s}")
            configure(d, iters=1000, sleep=0.05)
            return d
        jobs.append(Job(point={}, seed=s, prepare=make))
    sched = Scheduler(jobs, parallel=2)
    sched.step()
    wait_for(lambda: all((read_status(j.run_dir) or {}).get("status") == "running" for j in sched.active))
    sched.stop_all(grace_s=5)
    assert [j.state for j in jobs] == ["ended", "ended", "skipped"]
    assert [j.summary.status for j in jobs[:2]] == ["stopped", "stopped"]
    assert all(reaped(j.handle.pid) for j in jobs[:2])
