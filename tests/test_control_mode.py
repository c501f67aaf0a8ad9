"""control_mode: a config key whose 'auto' is the seed's pd_joint_delta_pos for maniskill: envs,
plumbed into the env, recorded in finetuned checkpoints, and checked against policies (CFG04)."""
from __future__ import annotations

import pytest

from engine.config.loading import load_config
from engine.config.schema import RunConfig, expected_action_dim, resolved_control_mode
from engine.envs import EnvError, make_env
from engine.validate import validate


def test_auto_is_the_seeds_controller_for_maniskill_and_lite_keeps_its_own():
    assert resolved_control_mode("maniskill:PickCube-v1", "auto") == "pd_joint_delta_pos"
    assert resolved_control_mode("pickcube-lite", "auto") == "pd_ee_delta_pos"
    assert expected_action_dim("maniskill:PickCube-v1", "auto") == 8
    assert expected_action_dim("maniskill:PickCube-v1", "pd_ee_delta_pos") == 4
    assert expected_action_dim("pickcube-lite", "auto") == 4
    assert load_config("online-mc16-awr", env="maniskill:PickCube-v1").effective_control_mode == "pd_joint_delta_pos"
    assert load_config("online-mc16-awr", {"control_mode": "pd_ee_delta_pos"},
                       env="maniskill:PickCube-v1").effective_control_mode == "pd_ee_delta_pos"


def _policy_meta(act_dim: int, **extra) -> dict:
    return {"kind": "policy", "env_id": "x", "role": "start", "act_dim": act_dim, "obs_dim": 42, **extra}


def _cfg04(cfg: RunConfig, metas: dict):
    return [f for f in validate(cfg, metas) if f.id == "CFG04"]


def test_validator_refuses_a_policy_whose_action_size_does_not_fit():
    cfg = RunConfig(env="maniskill:PickCube-v1", checkpoint="start", regime="online", estimator="gae")
    (f,) = _cfg04(cfg, {"checkpoint": _policy_meta(4)})
    assert f.severity == "error" and "4-D" in f.why and "takes 8" in f.why
    assert f.fix == {"control_mode": "pd_ee_delta_pos"}
    assert _cfg04(cfg, {"checkpoint": _policy_meta(8)}) == []
    cfg.control_mode = "pd_ee_delta_pos"
    assert _cfg04(cfg, {"checkpoint": _policy_meta(4)}) == []
    # a recorded controller that differs is refused even when the sizes agree
    (f,) = _cfg04(cfg, {"checkpoint": _policy_meta(4, control_mode="pd_ee_target_delta_pos")})
    assert f.fix == {"control_mode": "pd_ee_target_delta_pos"}
    lite = RunConfig(env="pickcube-lite", checkpoint="start", estimator="gae")
    assert _cfg04(lite, {"checkpoint": _policy_meta(4)}) == []
    assert _cfg04(lite, {"checkpoint": _policy_meta(8)})[0].severity == "error"
    lite.control_mode = "pd_joint_delta_pos"
    assert [f.fix for f in _cfg04(lite, {})] == [{"control_mode": "auto"}]


def test_pickcube_lite_refuses_another_controller():
    assert make_env("pickcube-lite", 2, control_mode="pd_ee_delta_pos").act_dim == 4
    with pytest.raises(EnvError, match="one controller"):
        make_env("pickcube-lite", 2, control_mode="pd_joint_delta_pos")


def test_maniskill_env_runs_the_configured_controller():
    env = make_env("maniskill:PickCube-v1", 1, seed=0, control_mode="pd_joint_delta_pos")
    try:
        assert env.act_dim == 8
    finally:
        env.close()


def test_finetuned_checkpoints_record_the_controller(tmp_path):
    from engine import checkpoints as ck
    from engine.train.finetune import Finetuner

    cfg = RunConfig(env="pickcube-lite", checkpoint="none", critic_checkpoint="none", estimator="gae", update="ppo",
                    num_envs=4, num_steps=8, total_timesteps=32, num_eval_envs=2, num_minibatches=2, update_epochs=1)
    t = Finetuner(cfg, run_dir=tmp_path)
    try:
        assert t.run() == "done"
    finally:
        t.close()
    assert ck.read_meta(tmp_path / "checkpoints" / "latest.pt")["control_mode"] == "pd_ee_delta_pos"
