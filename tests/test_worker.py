"""The worker end to end: one config into one run directory, done / stopped / failed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config.schema import RunConfig
from engine.config.tomlio import write_flat
from engine.records import read_metrics, read_status, write_status

ROOT = Path(__file__).resolve().parents[1]


def make_run(tmp_path: Path, **over) -> Path:
    cfg = RunConfig(checkpoint="none", critic_checkpoint="none", estimator="gae", update="ppo", num_envs=8,
                    num_steps=10, total_timesteps=240, update_epochs=2, num_minibatches=4, num_eval_envs=8,
                    exp_name="tiny-gae-ppo", command="pytest tiny run")
    for k, v in over.items():
        setattr(cfg, k, v)
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    write_flat(run / "config.toml", cfg.to_dict())
    (run / "findings.json").write_text("[]")
    write_status(run, "queued")
    return run


def worker(run: Path, *extra: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PLAYGROUND_EXPERIMENTS_LOG": str(run.parent.parent / "log.md"),
           "PLAYGROUND_CHECKPOINTS_DIR": str(run.parent.parent / "ck")}
    return subprocess.Popen([sys.executable, "-m", "engine", "--run-dir", str(run), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_a_run_ends_done_with_every_record(tmp_path):
    run = make_run(tmp_path)
    p = worker(run)
    out, _ = p.communicate(timeout=240)
    assert p.returncode == 0, out
    st = read_status(run)
    assert st["status"] == "done" and st["exit_code"] == 0 and st["pid"] == p.pid and st["ended"]
    rows = read_metrics(run)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    for r in rows:
        assert {"iteration", "env_steps", "wall_s", "sr", "sr_at_end"} <= set(r) and 0 <= r["sr"] <= 1
    assert rows[-1]["env_steps"] == 240
    assert (run / "checkpoints" / "latest.pt").is_file() and (run / "engine.log").is_file()
    assert any(f.name.startswith("events.out.tfevents") for f in run.iterdir())
    log = (tmp_path / "log.md").read_text()
    assert "tiny-gae-ppo" in log and "pytest tiny run" in log and "| 3 | 240 |" in log


def test_sigterm_stops_cleanly_and_resume_continues(tmp_path):
    run = make_run(tmp_path, total_timesteps=80 * 200, num_envs=8, num_steps=10)
    p = worker(run)
    deadline = time.time() + 180
    while time.time() < deadline and len(read_metrics(run)) < 3:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    st = read_status(run)
    assert st["status"] == "stopped" and p.returncode == 143
    done_iters = read_metrics(run)[-1]["iteration"]
    assert (run / "checkpoints" / "resume.pt").is_file()
    cfg_path = run / "config.toml"
    cfg_path.write_text(cfg_path.read_text().replace("total_timesteps = 16000", f"total_timesteps = {(done_iters + 2) * 80}"))
    p = worker(run, "--resume")
    out, _ = p.communicate(timeout=240)
    assert p.returncode == 0, out
    iters = [r["iteration"] for r in read_metrics(run)]
    assert iters[-1] == done_iters + 2 and read_status(run)["status"] == "done"


def test_non_finite_training_ends_failed_with_the_error(tmp_path):
    run = make_run(tmp_path, reward_scale=1e39)  # 0 * inf rewards: NaN advantages
    p = worker(run)
    p.communicate(timeout=240)
    st = read_status(run)
    assert p.returncode == 1 and st["status"] == "failed" and "non-finite" in st["error"]
    assert "non-finite" in (run / "engine.log").read_text()


def test_bad_config_fails_with_one_line(tmp_path):
    run = make_run(tmp_path)
    (run / "config.toml").write_text("gamma = 'high'\n")
    p = worker(run)
    p.communicate(timeout=120)
    st = read_status(run)
    assert st["status"] == "failed" and "key 'gamma' should be float" in st["error"]
    assert "\n" not in st["error"]


def test_a_checkpoint_of_another_env_fails(tmp_path):
    from engine.checkpoints import save_checkpoint
    from engine.nets import Actor

    ckpt = tmp_path / "other.pt"
    save_checkpoint(ckpt, env_id="maniskill:PickCube-v1", role="start", actor=Actor(42, 4))
    run = make_run(tmp_path, checkpoint=str(ckpt))
    p = worker(run)
    p.communicate(timeout=120)
    st = read_status(run)
    assert st["status"] == "failed" and "trained on env 'maniskill:PickCube-v1'" in st["error"]
