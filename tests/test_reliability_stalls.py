"""Reliability round 2 (issue 18): checkpoint size bombs refused before loading, stalled workers
shown as `stalled since ...` in `runs`, `show`, the follow watcher and the TUI's model, and a
too-long RAY_TMPDIR named in one line.

The fake worker of tests/test_launcher.py stands in for `python -m engine`."""
from __future__ import annotations

import json
import os
import resource
import signal
import time
import zipfile
from pathlib import Path

import pytest

from engine import settings
from engine.checkpoints import CheckpointError, load_checkpoint, load_resume_state, save_checkpoint
from engine.launcher import RunWatcher, detect_stall, list_runs, prepare_run, start_worker
from engine.nets import Actor, Critic
from engine.records import write_status
from tests.test_launcher import cfg, configure, fake_cmd, runs, wait_for, worker  # noqa: F401 (fixtures)
from tests.test_reliability_records import cli


@pytest.fixture(autouse=True)
def _shipped_ladder(monkeypatch):
    """The package's shipped pickcube-lite ladder: no test here may start a pretraining job."""
    monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "1")


# --- class 8: checkpoint size bombs -----------------------------------------------------------

def rewrite(src: Path, out: Path, entry_bytes: int, *, how: str) -> Path:
    """`src` with its first tensor entry replaced by `entry_bytes` zeros: deflated (`deflate`),
    or stored with a central directory that lies about the size (`lie`)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w") as w:
        for info in z.infolist():
            data = z.read(info.filename)
            if info.filename.endswith("/data/0") and how == "deflate":
                w.writestr(info.filename, b"\0" * entry_bytes, compress_type=zipfile.ZIP_DEFLATED)
            else:
                w.writestr(info, data)
    if how == "lie":  # patch the central directory's uncompressed size of that entry
        raw = bytearray(out.read_bytes())
        pos = raw.find(b"PK\x01\x02")
        while pos >= 0:
            name_len = int.from_bytes(raw[pos + 28:pos + 30], "little")
            if raw[pos + 46:pos + 46 + name_len].endswith(b"/data/0"):
                raw[pos + 24:pos + 28] = entry_bytes.to_bytes(4, "little")
                break
            pos = raw.find(b"PK\x01\x02", pos + 4)
        out.write_bytes(bytes(raw))
    return out


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "policy.pt"
    save_checkpoint(p, env_id="pickcube-lite", role="start", actor=Actor(42, 4))
    return p


@pytest.mark.parametrize("how", ["deflate", "lie"])
def test_a_checkpoint_whose_entry_expands_far_beyond_its_size_is_refused_before_loading(tmp_path, policy, how):
    bomb = rewrite(policy, tmp_path / "bomb.pt", 256 << 20, how=how)
    assert bomb.stat().st_size < 4 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bomb)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert "refused before loading" in str(e.value) and str(bomb) in str(e.value)
    assert grown_mib < 64  # nothing near the 256 MiB the entry claims was allocated
    assert len(str(e.value).splitlines()) == 1


def test_a_resume_file_bomb_is_refused_too(tmp_path, policy):
    bomb = rewrite(policy, tmp_path / "resume.pt", 128 << 20, how="deflate")
    with pytest.raises(CheckpointError, match="refused before loading"):
        load_resume_state(bomb)


def test_tensors_bigger_than_the_network_the_metadata_describes_are_refused(tmp_path):
    big = tmp_path / "big.pt"
    save_checkpoint(big, env_id="pickcube-lite", role="critic", critic=Critic(42, layers=3, width=2048))
    sidecars = [p for p in tmp_path.iterdir() if p.suffix == ".json"]
    assert sidecars, "save_checkpoint writes a metadata sidecar"
    for s in sidecars:  # the metadata now says a small critic: the weights are far bigger than that
        meta = json.loads(s.read_text())
        meta.update(critic_width=8, critic_layers=1)
        s.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="more than the networks its metadata describes"):
        load_checkpoint(big)


def test_real_checkpoints_still_load(tmp_path, policy):
    c = load_checkpoint(policy)
    assert c.meta["obs_dim"] == 42 and c.actor_state is not None
    crit = tmp_path / "critic.pt"
    save_checkpoint(crit, env_id="pickcube-lite", role="critic", critic=Critic(42, layers=4, width=1024))
    assert load_checkpoint(crit).meta["critic_width"] == 1024


# --- class 9: stalls --------------------------------------------------------------------------

def running_run(runs: Path, rows: int = 3, per_s: float = 1.0) -> Path:
    d = prepare_run(cfg(), [], runs_dir=runs)
    write_status(d, "running", pid=os.getpid(), started="2026-01-01T00:00:00+00:00")
    with open(d / "metrics.jsonl", "w") as f:
        for i in range(rows):
            f.write(json.dumps({"iteration": i, "env_steps": 100 * i, "wall_s": per_s * (i + 1), "sr": 0.1}) + "\n")
    return d


def test_a_run_without_progress_for_far_longer_than_its_iterations_is_stalled(runs: Path):
    d = running_run(runs, per_s=1.0)
    now = time.time()
    assert detect_stall(d, {"status": "running", "pid": os.getpid()}, [], now=now) is None  # just written
    old = now - 3600
    for p in d.iterdir():
        os.utime(p, (old, old))
    from engine.records import read_metrics

    s = detect_stall(d, {"status": "running", "pid": os.getpid()}, read_metrics(d), now=now)
    assert s is not None and s.label().startswith("stalled since ") and "nothing written for 3600 s" in s.why
    # a run whose iterations take 20 minutes is not stalled after an hour... but is after 4 hours
    slow = running_run(runs, per_s=1200.0)
    for p in slow.iterdir():
        os.utime(p, (old, old))
    assert detect_stall(slow, {"status": "running", "pid": os.getpid()}, read_metrics(slow), now=now) is None
    assert detect_stall(slow, {"status": "running", "pid": os.getpid()}, read_metrics(slow),
                        now=now + 4 * 3600) is not None


def test_a_finished_run_is_never_stalled(runs: Path):
    d = running_run(runs)
    old = time.time() - 10 ** 6
    for p in d.iterdir():
        os.utime(p, (old, old))
    assert detect_stall(d, {"status": "done", "pid": os.getpid()}, []) is None


def test_a_sigstopped_worker_shows_stalled_since_in_runs_show_and_the_watcher(runs: Path, worker, capsys):
    from tui.model import RunView

    d = prepare_run(cfg(), [], runs_dir=runs)
    configure(d, iters=10_000, sleep=0.05)
    proc = start_worker(d, worker_cmd=fake_cmd(worker, d))
    try:
        wait_for(lambda: (d / "metrics.jsonl").exists() and (d / "metrics.jsonl").stat().st_size > 0)
        os.kill(proc.pid, signal.SIGSTOP)
        wait_for(lambda: list_runs(runs)[0].status_label.startswith("stalled since"), timeout=10)
        [s] = list_runs(runs)
        assert s.status == "running" and "stopped" in s.stall
        code, out, err = cli(capsys, "--runs-dir", str(runs), "runs")
        assert code == 0 and "stalled since" in out
        code, out, err = cli(capsys, "--runs-dir", str(runs), "show", d.name)
        assert code == 0 and "stalled since" in out
        code, out, err = cli(capsys, "--runs-dir", str(runs), "runs", "--json")
        assert json.loads(out)[0]["stalled_since"].startswith("stalled since"), out
        w = RunWatcher(d, liveness_every_s=0.0)
        events = w.poll()
        st = [e.data for e in events if e.kind == "status"][-1]
        assert st["status"] == "running" and st["stalled_since"].startswith("stalled since")
        v = RunView(d.name, d, status=st)
        assert v.state == "stalled"
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: not list_runs(runs)[0].stalled_since, timeout=10)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.stop(2)


# --- class 12: RAY_TMPDIR too long for Ray's sockets ------------------------------------------

def test_a_too_long_ray_tmpdir_is_one_line_naming_it(tmp_path: Path, monkeypatch):
    long_dir = tmp_path / ("x" * 80)
    monkeypatch.setenv("RAY_TMPDIR", str(long_dir))
    with pytest.raises(settings.SettingError) as e:
        settings.check_ray_tmpdir()
    assert "RAY_TMPDIR" in str(e.value) and "shorten" in str(e.value)
    monkeypatch.delenv("RAY_TMPDIR")
    monkeypatch.setenv("TMPDIR", str(long_dir))
    with pytest.raises(settings.SettingError, match="TMPDIR.*set RAY_TMPDIR"):
        settings.check_ray_tmpdir()
    monkeypatch.setenv("RAY_TMPDIR", "/tmp/ray")
    settings.check_ray_tmpdir()  # a short RAY_TMPDIR wins over a long TMPDIR


def test_sweep_on_ray_with_a_too_long_ray_tmpdir_exits_2_with_one_line(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / ("y" * 90)))
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "--runs-dir", str(runs), "sweep", "gae-ppo", "--checkpoint", "none", "--no-pretrain",
                         "--seeds", "0-1", "--backend", "ray")
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and any("RAY_TMPDIR" in x for x in lines), err
    assert "internal error" not in err and "OSError" not in err and len(lines) == 1


# --- class 10: resumable sweeps ---------------------------------------------------------------

def sweep_env(tmp_path: Path, monkeypatch, **opts) -> Path:
    from tests.test_launcher import write_fake_worker

    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(write_fake_worker(tmp_path)))
    monkeypatch.setenv("FAKE_WORKER_OPTS", json.dumps({"iters": 3, "sleep": 0.01, **opts}))
    return tmp_path / "runs"


def launches(run_dir: Path) -> list[str]:
    return [x for x in (run_dir / "worker.out").read_text().splitlines() if x.startswith("---")]


def test_sweep_resume_skips_done_runs_resumes_stopped_and_failed_ones_and_starts_the_rest(
        tmp_path: Path, monkeypatch, capsys):
    from engine.launcher import load_sweep

    runs = sweep_env(tmp_path, monkeypatch)
    code, out, err = cli(capsys, "--runs-dir", str(runs), "sweep", "gae-ppo", "--checkpoint", "none", "--no-pretrain",
                         "--seeds", "0-3", "--grid", "gamma=0.8,0.9", "--json")
    assert code == 0, err
    sweep_id = json.loads(out)["sweep"]
    rec = load_sweep(runs, sweep_id)
    assert len(rec.runs) == 8
    dirs = {json.loads(k)["seed"] * 10 + (json.loads(k)["point"]["gamma"] == "0.9"): runs / v
            for k, v in rec.runs.items()}
    write_status(dirs[0], "stopped", exit_code=143)           # seed 0, gamma 0.8: stopped after a save
    (dirs[0] / "checkpoints").mkdir(exist_ok=True)
    (dirs[0] / "checkpoints" / "resume.pt").write_bytes(b"saved")  # the fake worker does not read it
    write_status(dirs[11], "failed", exit_code=1, error="x")   # seed 1, gamma 0.9: failed
    import shutil

    shutil.rmtree(dirs[20])                                     # seed 2, gamma 0.8: never ran (gone)
    code, out, err = cli(capsys, "--runs-dir", str(runs), "sweep", "--resume", sweep_id[:12], "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["sweep"] == sweep_id and len(doc["runs"]) == 8
    assert all(r["status"] == "done" for r in doc["runs"])
    assert "1 to start" in err and "2 to resume" in err and "5 done" in err
    for key, d in dirs.items():
        if key == 0:  # from its last save
            assert len(launches(d)) == 2 and launches(d)[1].endswith("--resume")
        elif key == 11:  # failed before any save: started over
            assert len(launches(d)) == 2 and not launches(d)[1].endswith("--resume")
        elif key != 20:
            assert len(launches(d)) == 1  # done: not run again
    new = load_sweep(runs, sweep_id).runs
    assert len(new) == 8 and sum(1 for v in new.values() if (runs / v).is_dir()) == 8


def test_sweep_resume_of_a_killed_sweep_follows_its_live_worker_instead_of_starting_a_second(
        tmp_path: Path, monkeypatch, capsys):
    import subprocess
    import sys

    runs = sweep_env(tmp_path, monkeypatch, iters=40, sleep=0.05)
    repo = str(Path(__file__).resolve().parent.parent)
    p = subprocess.Popen([sys.executable, "-c", "from engine.cli.app import main; main()", "--runs-dir", str(runs), "sweep", "gae-ppo",
                          "--checkpoint", "none", "--no-pretrain", "--seeds", "0-1"], cwd=repo,
                         env={**os.environ, "PYTHONPATH": repo}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: any(runs.glob("*/metrics.jsonl")), timeout=120)
    finally:
        p.kill()  # the sweep's launcher dies; its first worker (own session) keeps running
        p.wait()
    sweep_id = next(runs.glob(".sweep-*.json")).name[len(".sweep-"):-len(".json")]
    code, out, err = cli(capsys, "--runs-dir", str(runs), "sweep", "--resume", sweep_id)
    assert code == 0, err + out
    first = sorted(runs.glob("*-s0"))
    assert len(first) == 1 and len(launches(first[0])) == 1  # followed, not started twice
    assert "1 still running" in out + err
    assert all((read_status_of(d) == "done") for d in runs.iterdir() if not d.name.startswith("."))


def read_status_of(d: Path) -> str | None:
    from engine.records import read_status

    return (read_status(d) or {}).get("status")


def test_sweep_resume_of_an_unknown_sweep_is_one_line(tmp_path: Path, capsys):
    code, out, err = cli(capsys, "--runs-dir", str(tmp_path / "runs"), "sweep", "--resume", "nope")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "names no sweep" in err
    code, out, err = cli(capsys, "--runs-dir", str(tmp_path / "runs"), "sweep", "gae-ppo", "--resume", "x")
    assert code == 2 and "--resume" in err
