"""Pretraining as a job: its own process and run directory, followed and stopped like a run
(the real job module around a fast stand-in for run_pretrain: tests/fake_pretrain.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.launcher import RunProgress, active_pretrain, follow, list_runs, resume, start_pretrain
from engine.records import read_status

FAKE = Path(__file__).with_name("fake_pretrain.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    return tmp_path


def test_pretrain_job_runs_in_its_own_process_and_is_followed_like_a_run(job_env):
    import engine.checkpoints as ck

    proc = start_pretrain("pickcube-lite", runs_dir=job_env / "runs")
    prog = RunProgress(proc.run_dir)
    for ev in follow(proc.run_dir, poll_s=0.1, proc=proc):
        prog.add(ev)
    assert proc.wait(30) == 0
    assert prog.state == "done" and prog.planned == 2 and prog.iteration == 2 and prog.sr == pytest.approx(0.6)
    assert [n["role"] for n in prog.notes] == ["start", "expert", "optimal", "critic-expert", "critic-optimal"]
    assert sorted(ck.read_index("pickcube-lite")["roles"]) == ["critic-expert", "critic-optimal", "expert", "optimal",
                                                               "start"]
    log = (proc.run_dir / "engine.log").read_text()
    assert "PPO iteration 2/2" in log and "ladder: start = iteration 1" in log
    (s,) = list_runs(job_env / "runs")
    assert (s.preset, s.status, s.iteration, s.planned_iterations, s.peak_sr) == ("pretrain", "done", 2, 2, 0.6)
    assert read_status(proc.run_dir)["pid"] == proc.pid


def test_a_stopped_job_ends_stopped_and_leaves_no_ladder(job_env, monkeypatch):
    import engine.checkpoints as ck

    monkeypatch.setenv("FAKE_PRETRAIN", json.dumps({"iters": 1000, "sleep": 0.05}))
    proc = start_pretrain("pickcube-lite", runs_dir=job_env / "runs")
    for ev in follow(proc.run_dir, poll_s=0.1, proc=proc):
        if ev.kind == "metrics" and ev.data.get("iteration", 0) >= 2:
            break
    assert active_pretrain("pickcube-lite", job_env / "runs") == proc.run_dir
    assert active_pretrain("maniskill:PickCube-v1", job_env / "runs") is None
    from engine.runlock import is_locked

    assert is_locked(proc.run_dir)  # held by the job for its life, as a run's worker holds its own
    second = subprocess.run([sys.executable, str(FAKE), "--run-dir", str(proc.run_dir)], capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 2 and "already has a live worker" in second.stderr
    assert proc.stop(10) == 143
    st = read_status(proc.run_dir)
    assert st["status"] == "stopped" and st["exit_code"] == 143
    assert ck.read_index("pickcube-lite")["roles"] == {}
    assert active_pretrain("pickcube-lite", job_env / "runs") is None
    with pytest.raises(UserError, match="is a pretraining job, not a run: start it again with `playground pretrain"):
        resume(proc.run_dir)


def test_a_failing_job_ends_failed_with_its_reason(job_env, monkeypatch):
    monkeypatch.setenv("FAKE_PRETRAIN", json.dumps({"fail": True}))
    proc = start_pretrain("pickcube-lite", runs_dir=job_env / "runs")
    assert proc.wait(60) == 1
    st = read_status(proc.run_dir)
    assert st["status"] == "failed" and "fake pretraining failed" in st["error"]


def test_module_entry_point_bad_env_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "engine", "pretrain", "--env", "nope", "--runs-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown env id 'nope'" in p.stderr
    assert not any(tmp_path.iterdir())
