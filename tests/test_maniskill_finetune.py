"""A short GAE-PPO finetune on the real ManiSkill3 PickCube-v1 (physx_cpu, CPU), end to end
through the worker: a few iterations, records written, status done."""
import os
import subprocess
import sys
from pathlib import Path

from engine.config.schema import RunConfig
from engine.config.tomlio import write_flat
from engine.records import read_metrics, read_status, write_status

ROOT = Path(__file__).resolve().parents[1]


def test_gae_ppo_finetune_on_maniskill_pickcube_cpu(tmp_path):
    cfg = RunConfig(env="maniskill:PickCube-v1", checkpoint="none", critic_checkpoint="none", estimator="gae",
                    update="ppo", gamma=0.95, num_envs=2, num_steps=25, total_timesteps=150, update_epochs=2,
                    num_minibatches=2, num_eval_envs=2, exp_name="maniskill-gae-ppo-smoke")
    run = tmp_path / "run"
    run.mkdir()
    write_flat(run / "config.toml", cfg.to_dict())
    write_status(run, "queued")
    env = {**os.environ, "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md")}
    p = subprocess.run([sys.executable, "-m", "engine", "--run-dir", str(run)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    st = read_status(run)
    assert p.returncode == 0 and st["status"] == "done", (st, p.stdout[-2000:], p.stderr[-2000:],
                                                          (run / "engine.log").read_text()[-3000:])
    rows = read_metrics(run)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["env_steps"] == 150
    for r in rows:
        assert 0.0 <= r["sr"] <= 1.0 and 0.0 <= r["sr_at_end"] <= 1.0
    assert (run / "checkpoints" / "latest.pt").is_file()
    from engine.checkpoints import read_meta

    meta = read_meta(run / "checkpoints" / "latest.pt")
    # control_mode auto = the seed's pd_joint_delta_pos: 8 actions (7 joint deltas and the gripper)
    assert meta["env_id"] == "maniskill:PickCube-v1" and meta["obs_dim"] == 42 and meta["act_dim"] == 8
    assert meta["control_mode"] == "pd_joint_delta_pos"
