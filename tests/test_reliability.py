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
from tests._procs import started
from tests.test_launcher import cfg, configure, fake_cmd, runs, wait_for, worker  # noqa: F401 (fixtures)


def sleeper(*extra: str) -> subprocess.Popen:
    """An unrelated process (not a worker) in its own session."""
    return started([sys.executable, "-c", "import time; time.sleep(60)", *extra], start_new_session=True)


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
        assert st["status"] == "failed" and "worker gone" in st["error"]  # its worker is not running
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


# --- item 1: a followed run ends when its worker exits, whatever status.json says -------------

def test_atomic_write_leaves_no_temporary_file_when_it_fails(tmp_path: Path, monkeypatch):
    from engine import records

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    write_status(tmp_path, "running", pid=1)
    monkeypatch.setattr(records.os, "replace", boom)
    with pytest.raises(OSError):
        write_status(tmp_path, "done", exit_code=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
    assert read_status(tmp_path)["status"] == "running"


def follow_in_thread(d: Path, proc, timeout: float) -> list:
    import threading

    from engine.launcher import follow

    out: list = []
    t = threading.Thread(target=lambda: out.extend(follow(d, poll_s=0.02, proc=proc)), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "follow did not end after the worker exited"
    return out


def test_follow_ends_when_the_worker_exits_and_no_status_can_be_written(runs: Path, worker: list[str], monkeypatch):
    import engine.records as records

    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="die")  # writes `running`, then exits 3 without a final status
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    wait_for(lambda: proc.popen.poll() is not None)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records, "atomic_write", full)
    events = follow_in_thread(d, proc, timeout=10)
    final = [e.data for e in events if e.kind == "status"][-1]
    assert final["status"] == "failed" and "could not be updated" in final["error"]
    assert read_status(d)["status"] == "running"  # nothing could be written, and nothing hung
    assert not list(d.glob(".status.json.*.tmp"))


def test_follow_of_another_launchers_dead_worker_ends_on_a_full_disk(runs: Path, monkeypatch):
    import engine.records as records

    d = prepare_run(cfg(), [], runs_dir=runs)
    p = subprocess.Popen([sys.executable, "-c", "pass", "--run-dir", str(d)])
    p.wait()
    write_status(d, "running", pid=p.pid, started=now_iso())

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records, "atomic_write", full)
    events = follow_in_thread(d, None, timeout=10)
    assert events[-1].terminal and events[-1].data["status"] == "failed"


def test_the_worker_exits_failed_without_traceback_when_its_final_status_cannot_be_written(
        tmp_path: Path, monkeypatch, capsys):
    import engine.records as records
    from engine import worker as worker_mod

    d = prepare_run(cfg(num_envs=2, num_steps=4, total_timesteps=8, num_eval_envs=2, update_epochs=1,
                        num_minibatches=1), [], runs_dir=tmp_path / "runs")
    real = records.atomic_write

    def full_at_the_end(path, text):
        if Path(path).name == "status.json" and '"status": "done"' in text:
            raise OSError(28, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(records, "atomic_write", full_at_the_end)
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = worker_mod.run_worker(d)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # item 2: terminal -> stops ignored
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert code == worker_mod.EXIT_FAILED
    assert read_status(d)["status"] == "running"
    assert "could not write the final status 'done'" in capsys.readouterr().err
    assert not list(d.glob(".*.tmp"))


# --- item 2: a worker that has written its terminal status is closing, not to be stopped ------

LINGER = r'''
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, REPO)
from engine.records import now_iso, write_status
run_dir = Path(sys.argv[sys.argv.index("--run-dir") + 1])
write_status(run_dir, "running", pid=os.getpid(), started=now_iso())
write_status(run_dir, "done", exit_code=0)
time.sleep(1.0)   # closing: the experiment log, the TensorBoard flush (SIGTERM would kill it here)
(run_dir / "closed").write_text("ok")
'''


def test_stop_waits_for_a_worker_whose_status_is_terminal(runs: Path, tmp_path: Path):
    repo = str(Path(__file__).resolve().parent.parent)
    script = tmp_path / "linger.py"
    script.write_text(f"REPO = {repo!r}\n" + LINGER)
    d = prepare_run(cfg(), [], runs_dir=runs)
    proc = start_worker(d, worker_cmd=[sys.executable, str(script), "--run-dir", str(d)])
    wait_for(lambda: (read_status(d) or {}).get("status") == "done")
    assert proc.stop(grace_s=5) == 0
    assert (d / "closed").exists() and read_status(d)["exit_code"] == 0


# --- item 3: listing reads only -----------------------------------------------------------------

def dead_worker_run(runs: Path) -> Path:
    d = prepare_run(cfg(), [], runs_dir=runs)
    p = subprocess.Popen([sys.executable, "-c", "pass", "--run-dir", str(d)])
    p.wait()
    write_status(d, "running", pid=p.pid, started=now_iso())
    return d


def test_listing_shows_a_dead_worker_as_failed_without_writing(runs: Path, monkeypatch):
    import engine.records as records
    from engine.launcher import list_runs, summarize_run

    d = dead_worker_run(runs)
    before = (d / "status.json").read_bytes()

    def readonly(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(records, "atomic_write", readonly)
    [row] = list_runs(runs)
    assert row.status == "failed" and row.status_label == "failed (worker gone)"
    assert summarize_run(d).status == "failed"
    assert (d / "status.json").read_bytes() == before


def test_runs_show_and_stop_on_a_full_disk_are_not_internal_errors(runs: Path, monkeypatch):
    from typer.testing import CliRunner

    import engine.records as records
    from engine.cli.app import app

    d = dead_worker_run(runs)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records, "atomic_write", full)
    cli = CliRunner()
    for args in (["runs"], ["show", d.name], ["stop", d.name], ["runs", "--json"]):
        r = cli.invoke(app, ["--runs-dir", str(runs), *args])
        assert r.exit_code in (0, 1), (args, r.exit_code, r.output)
        assert "internal error" not in r.output and "Traceback" not in r.output
        if args[0] in ("runs", "show"):
            assert "failed" in r.output and "running" not in r.output, r.output


# --- items 4 and 5: one worker per run directory --------------------------------------------------

def test_a_second_start_of_a_running_run_names_the_live_workers_pid(runs: Path, worker: list[str]):
    from engine.launcher.spawn import RunBusy

    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=1000, sleep=0.05)
    with start_worker(d, worker_cmd=fake_cmd(worker, d)) as first:
        wait_for(lambda: (read_status(d) or {}).get("status") == "running")
        write_status(d, "stopped", exit_code=143)  # as if it had ended: only the lock tells
        with pytest.raises(RunBusy, match=f"worker pid {first.pid}"):
            start_worker(d, resume=True, worker_cmd=fake_cmd(worker, d, resume=True))


def test_start_worker_is_refused_while_the_run_directory_is_locked(runs: Path, worker: list[str]):
    from engine.launcher.spawn import RunBusy
    from engine.runlock import release, try_lock

    d = prepare_run(cfg(), [], runs_dir=runs)
    fd = try_lock(d)
    try:
        with pytest.raises(RunBusy):
            start_worker(d, worker_cmd=fake_cmd(worker, d))
        assert not (d / "worker.json").exists() and read_status(d)["status"] == "queued"
    finally:
        release(fd)


def test_the_real_worker_refuses_a_run_directory_another_worker_holds(runs: Path):
    from engine.launcher.reconcile import write_worker_info
    from engine.runlock import release, try_lock

    d = prepare_run(cfg(), [], runs_dir=runs)
    write_worker_info(d, {"pid": 4242})
    fd = try_lock(d)
    try:
        r = subprocess.run([sys.executable, "-m", "engine", "--run-dir", str(d)], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    finally:
        release(fd)
    assert r.returncode == 2 and "pid 4242" in r.stderr and "Traceback" not in r.stderr
    assert read_status(d)["status"] == "queued"


def test_reconcile_in_the_resume_gap_does_not_fail_the_run(runs: Path):
    """A launcher holds the lock and has reset the status to queued without a pid; worker.json
    still names the previous (dead) worker. A reconcile then must not mark the run failed."""
    from engine.launcher import reconcile
    from engine.launcher.reconcile import write_worker_info
    from engine.runlock import release, try_lock

    d = prepare_run(cfg(), [], runs_dir=runs)
    old = subprocess.Popen([sys.executable, "-c", "pass", "--run-dir", str(d)])
    old.wait()
    write_worker_info(d, {"pid": old.pid, "spawned": now_iso()})
    fd = try_lock(d)
    try:
        write_status(d, "queued", pid=None, resumed=now_iso())
        assert reconcile(d)["status"] == "queued"
        assert read_status(d)["status"] == "queued"
    finally:
        release(fd)
    assert reconcile(d)["status"] == "failed"  # with nobody holding the run, it is dead


def test_an_old_workers_exit_does_not_fail_the_run_a_newer_worker_owns(runs: Path):
    from engine.launcher import reconcile
    from engine.launcher.reconcile import write_worker_info

    d = prepare_run(cfg(), [], runs_dir=runs)
    new = sleeper("--run-dir", str(d))
    try:
        write_worker_info(d, {"pid": new.pid, "spawned": now_iso()})
        write_status(d, "running", pid=new.pid, started=now_iso())
        assert reconcile(d, 143, pid=new.pid + 100000)["status"] == "running"
        assert read_status(d)["status"] == "running"
    finally:
        new.kill()
        new.wait()


# --- item 6: references name runs in the runs directory only ----------------------------------

def test_resolve_run_refuses_empty_names_and_directories_outside_the_runs_dir(runs: Path, tmp_path: Path):
    from engine.launcher import resolve_run
    from engine.records import RecordError

    only = prepare_run(cfg(), [], runs_dir=runs)
    for ref in ("", "  ", ".", ".."):
        with pytest.raises(RecordError, match="no run named"):
            resolve_run(ref, runs)
    elsewhere = prepare_run(cfg(), [], runs_dir=tmp_path / "other-runs")
    with pytest.raises(RecordError, match="not a run in the runs directory"):
        resolve_run(str(elsewhere), runs)
    with pytest.raises(RecordError, match="not a run in the runs directory"):
        resolve_run(str(runs / ".." / "other-runs" / elsewhere.name), runs)
    assert resolve_run(str(only), runs) == only
    assert resolve_run(only.name, runs) == only


def test_show_and_stop_of_an_empty_name_exit_2(runs: Path):
    from typer.testing import CliRunner

    from engine.cli.app import app

    prepare_run(cfg(), [], runs_dir=runs)
    for cmd in ("show", "stop"):
        r = CliRunner().invoke(app, ["--runs-dir", str(runs), cmd, ""])
        assert r.exit_code == 2 and "no run named" in r.output


# --- item 10: resume.pt is loaded like every other checkpoint ----------------------------------

def test_a_tampered_resume_file_is_one_line_without_unsafe_advice(tmp_path: Path):
    import torch

    from engine.checkpoints import CheckpointError, load_resume_state

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "resume.pt"
    torch.save({"iteration": Evil()}, p)
    with pytest.raises(CheckpointError) as e:
        load_resume_state(p)
    msg = str(e.value)
    assert "\n" not in msg and "weights_only" not in msg and "re-running" not in msg.lower()
    assert "resume file" in msg
    torch.save({"iteration": 1}, p)
    with pytest.raises(CheckpointError, match="does not hold"):
        load_resume_state(p)
    p.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_resume_state(p)


# --- item 12: the experiment log follows the runs directory's project ---------------------------

def git_repo(path: Path) -> str:
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env, capture_output=True)
    return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=path, capture_output=True,
                          text=True).stdout.strip()


def test_the_experiment_log_and_commit_follow_the_runs_directory(tmp_path: Path, monkeypatch):
    from engine.records import append_experiment_log, experiments_log_path, format_log_entry

    sha = git_repo(tmp_path / "project")
    git_repo(tmp_path / "elsewhere")
    monkeypatch.delenv("PLAYGROUND_EXPERIMENTS_LOG", raising=False)
    monkeypatch.chdir(tmp_path / "elsewhere")
    d = prepare_run(cfg(), [], runs_dir=tmp_path / "project" / "runs")
    assert experiments_log_path(d) == (tmp_path / "project" / "experiments" / "log.md").resolve()
    entry = format_log_entry(d, {}, {"status": "done"}, [], [])
    assert f"git commit: {sha}" in entry
    append_experiment_log(entry, run_dir=d)
    assert (tmp_path / "project" / "experiments" / "log.md").is_file()
    assert not (tmp_path / "elsewhere" / "experiments").exists()
    # outside any repository: beside the runs directory; an explicit path always wins
    plain = prepare_run(cfg(), [], runs_dir=tmp_path / "plain" / "runs")
    assert experiments_log_path(plain) == (tmp_path / "plain" / "experiments" / "log.md").resolve()
    monkeypatch.setenv("PLAYGROUND_EXPERIMENTS_LOG", str(tmp_path / "mine.md"))
    assert experiments_log_path(d) == tmp_path / "mine.md"


# --- item 8: upper bounds, a memory estimate, several ManiSkill envs per process ----------------

def test_huge_values_are_refused_by_their_upper_bounds():
    from engine.config.loading import ConfigError, load_config

    for key, value in (("seed", "99999999999999999999"), ("num_envs", "1000000000"), ("mc_samples", "10000000"),
                       ("num_steps", "10000000"), ("num_eval_envs", "1000000000")):
        with pytest.raises(ConfigError) as e:
            load_config("gae-ppo", {key: value})
        assert len(e.value.problems) == 1 and "out of range" in str(e.value) and key in str(e.value)


def test_a_run_too_big_for_memory_is_refused_with_what_would_fit(monkeypatch):
    from engine.config.limits import estimate_memory
    from engine.config.loading import ConfigError, load_config

    monkeypatch.setenv("PLAYGROUND_MEM_AVAILABLE_MIB", "2048")
    with pytest.raises(ConfigError) as e:
        load_config("gae-ppo", {"num_envs": "60000", "num_steps": "1000"})
    msg = str(e.value)
    assert "\n" not in msg and "needs about" in msg and "2.0 GiB available" in msg and "--num_envs" in msg
    fits = int(msg.split("--num_envs ")[1].split()[0])
    cfg = load_config("gae-ppo", {"num_envs": str(fits), "num_steps": "1000"})
    assert estimate_memory(cfg).total <= 2048 << 20


def test_maniskill_eval_envs_are_hosted_in_a_few_processes(monkeypatch):
    from engine.config.limits import default_procs, estimate_memory, usable_cores
    from engine.config.loading import load_config

    monkeypatch.delenv("PLAYGROUND_MANISKILL_PROCS", raising=False)
    assert default_procs(100) == min(100, usable_cores())
    monkeypatch.setenv("PLAYGROUND_MANISKILL_PROCS", "2")
    cfg = load_config("gae-ppo", {"env": "maniskill:PickCube-v1", "checkpoint": "none", "num_eval_envs": 100})
    est = estimate_memory(cfg).total
    assert est < 4 << 30, "100 eval envs must not cost 100 processes"  # 4 processes of ~430 MiB
    monkeypatch.setenv("PLAYGROUND_MANISKILL_PROCS", "1000")
    assert estimate_memory(cfg).total > 40 * est / 4  # one process per env: what used to happen


def test_device_must_be_cpu_or_an_available_cuda():
    import torch

    from engine.config.loading import ConfigError, load_config

    with pytest.raises(ConfigError, match="'bogus' is not one of cpu, cuda"):
        load_config("gae-ppo", {"device": "bogus"})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            load_config("gae-ppo", {"device": "cuda"})


def test_the_worker_refuses_a_config_toml_edited_out_of_range(runs: Path):
    from engine.worker import WorkerConfigError, read_run_config

    d = prepare_run(cfg(), [], runs_dir=runs)
    text = (d / "config.toml").read_text()
    (d / "config.toml").write_text(text.replace('device = "cpu"', 'device = "bogus"'))
    with pytest.raises(WorkerConfigError, match="'device'"):
        read_run_config(d)
    (d / "config.toml").write_text(text.replace("seed = 0", "seed = 9223372036854775807"))
    with pytest.raises(WorkerConfigError, match="'seed'.*out of range"):
        read_run_config(d)


# --- item 7: check and run verify checkpoint sizes against the weights ----------------------------

def forged_policy(tmp_path: Path, how: str) -> Path:
    """A pickcube-lite policy whose weights take 6-D observations, disguised as 21-D: in the
    .json sidecar (`sidecar`) or in the metadata stored in the file (`embedded`)."""
    import json as _json

    import torch

    from engine.checkpoints import save_checkpoint
    from engine.nets import Actor

    p = tmp_path / f"forged-{how}.pt"
    save_checkpoint(p, env_id="pickcube-lite", role="start", actor=Actor(6, 4, layers=1, width=8))
    if how == "sidecar":
        side = p.with_name(p.name + ".json")
        meta = _json.loads(side.read_text())
        meta["obs_dim"] = 21
        side.write_text(_json.dumps(meta))
    else:
        blob = torch.load(p, weights_only=True)
        blob["meta"]["obs_dim"] = 21
        torch.save(blob, p)
    return p


@pytest.mark.parametrize("how", ["sidecar", "embedded"])
def test_check_and_run_refuse_a_checkpoint_whose_weights_do_not_fit(tmp_path: Path, how: str):
    from typer.testing import CliRunner

    from engine.cli.app import app

    p = forged_policy(tmp_path, how)
    root = tmp_path / "runs"
    for cmd in ("check", "run"):
        r = CliRunner().invoke(app, ["--runs-dir", str(root), cmd, "gae-ppo", "--checkpoint", str(p),
                                     "--critic_checkpoint", "none"])
        assert r.exit_code == 2, (cmd, r.output)
        assert "Traceback" not in r.output and ("6-D" in r.output or "obs_dim 6" in r.output)
    assert not root.exists()


# --- item 11: refused input writes nothing ------------------------------------------------------

@pytest.mark.parametrize("args", [["run", "gae-ppo", "--seed", "99999999999999999999"],
                                  ["run", "gae-ppo", "--num_envs", "0"],
                                  ["run", "no-such-preset"],
                                  ["sweep", "gae-ppo", "--seeds", "0-1", "--gamma", "7"],
                                  ["run", "gae-ppo", "--device", "bogus"]])
def test_refused_input_creates_no_runs_directory(tmp_path: Path, args: list[str]):
    from typer.testing import CliRunner

    from engine.cli.app import app

    root = tmp_path / "fresh" / "runs"
    r = CliRunner().invoke(app, ["--runs-dir", str(root), *args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "fresh").exists()


def test_a_runs_dir_that_cannot_be_created_is_one_line(tmp_path: Path):
    from engine.records import RecordError, ensure_runs_dir

    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordError, match="is a file"):
        ensure_runs_dir(tmp_path / "file" / "runs")
    assert ensure_runs_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()


# --- the held-out class: sizes of sweeps, unknown ManiSkill tasks -----------------------------------

@pytest.mark.parametrize("args", [["sweep", "gae-ppo", "--seeds", "0-99999999999"],
                                  ["sweep", "gae-ppo", "--seeds", "0-40", "--grid", "gamma=0.1,0.2,0.3,0.4,0.5",
                                   "--grid", "awr_beta=1,2,3,4,5"],
                                  ["reproduce", "--seeds", "99999999"]])
def test_oversized_sweeps_are_refused_up_front(tmp_path: Path, args: list[str]):
    import threading

    from typer.testing import CliRunner

    from engine.cli.app import app

    out: list = []
    t = threading.Thread(target=lambda: out.append(CliRunner().invoke(app, ["--runs-dir", str(tmp_path / "runs"), *args])),
                         daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "an oversized sweep hung"
    r = out[0]
    assert r.exit_code == 2 and "1000" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "runs").exists()


def test_an_unknown_maniskill_task_is_refused_by_check_before_anything_is_written(tmp_path: Path):
    from typer.testing import CliRunner

    from engine.cli.app import app

    for cmd in ("check", "run"):
        r = CliRunner().invoke(app, ["--runs-dir", str(tmp_path / "runs"), cmd, "gae-ppo", "--env",
                                     "maniskill:PickCub-v1", "--checkpoint", "none"])
        assert r.exit_code == 2 and "unknown ManiSkill task 'PickCub-v1'" in r.output and "PickCube-v1" in r.output
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_up_front_what_the_resumed_worker_would(runs: Path):
    from typer.testing import CliRunner

    from engine.cli.app import app

    d = prepare_run(cfg(), [], runs_dir=runs)
    write_status(d, "stopped", exit_code=143)
    before = sorted(p.name for p in d.iterdir())
    r = CliRunner().invoke(app, ["--runs-dir", str(runs), "run", "--resume", d.name])
    assert r.exit_code == 2 and "nothing to resume" in r.output
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "resume.pt").write_bytes(b"PK\x03\x04 not really")
    r = CliRunner().invoke(app, ["--runs-dir", str(runs), "run", "--resume", d.name])
    assert r.exit_code == 2 and "resume file" in r.output and "weights_only" not in r.output
    (d / "config.toml").write_text((d / "config.toml").read_text().replace("num_envs = 100", "num_envs = -4"))
    r = CliRunner().invoke(app, ["--runs-dir", str(runs), "run", "--resume", d.name])
    assert r.exit_code == 2 and "num_envs" in r.output
    assert read_status(d)["status"] == "stopped" and not (d / "worker.json").exists()
    assert sorted(p.name for p in d.iterdir()) == sorted(before + ["checkpoints"])


def test_stop_with_a_nan_or_huge_grace_does_not_hang(runs: Path, worker: list[str]):
    from engine.launcher.proc import MAX_GRACE_S, clamp_grace

    assert clamp_grace(float("nan")) == 0.0 and clamp_grace(-3) == 0.0 and clamp_grace(float("inf")) == MAX_GRACE_S
    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, mode="hang", iters=1000, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    wait_for(lambda: (read_status(d) or {}).get("status") == "running")
    t0 = time.monotonic()
    assert proc.stop(grace_s=float("nan")) == -signal.SIGKILL
    assert time.monotonic() - t0 < 10


def test_a_local_sweep_whose_parallel_runs_cannot_fit_is_refused(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.app import app
    from engine.config.limits import LimitError, check_parallel
    from engine.config.loading import load_config

    c = load_config("gae-ppo", {"checkpoint": "none", "critic_checkpoint": "none"})
    with pytest.raises(LimitError, match="--parallel 3 fits"):
        check_parallel([c] * 8, 8, available=3 * 400 << 20)
    check_parallel([c] * 8, 2, available=3 * 400 << 20)
    monkeypatch.setenv("PLAYGROUND_MEM_AVAILABLE_MIB", "1000")
    r = CliRunner().invoke(app, ["--runs-dir", str(tmp_path / "runs"), "sweep", "gae-ppo", "--seeds", "0-7",
                                 "--parallel", "8", "--checkpoint", "none", "--critic_checkpoint", "none"])
    assert r.exit_code == 2 and "--parallel" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "runs").exists()


def test_a_running_status_without_a_usable_pid_is_a_gone_worker(runs: Path):
    from engine.launcher import reconcile
    from engine.runlock import release, try_lock

    for pid in (None, 2 ** 22 + 12345, -7, True, "12"):
        d = prepare_run(cfg(), [], runs_dir=runs)
        write_status(d, "running", pid=pid, started=now_iso())
        fd = try_lock(d)  # a launcher starting it: left alone
        try:
            assert reconcile(d)["status"] == "running"
        finally:
            release(fd)
        assert reconcile(d)["status"] == "failed", pid
    q = prepare_run(cfg(), [], runs_dir=runs)
    assert reconcile(q)["status"] == "queued"  # prepared, never started
