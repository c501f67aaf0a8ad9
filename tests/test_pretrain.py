"""Pretraining's stop rules, its configuration, and what a (tiny) pretraining run records."""
from __future__ import annotations

import pytest

from engine import checkpoints as ck
from engine.train.pretrain import PretrainConfig, run_pretrain, stop_reason


def hist(*pairs):
    return [{"iteration": i, "det_sr": d, "stoch_sr": s} for i, (d, s) in enumerate(pairs, 1)]


def test_no_stop_before_an_expert_exists():
    cfg = PretrainConfig(patience=2)
    assert stop_reason(hist((0.1, 0.1), (0.3, 0.2), (0.2, 0.1), (0.2, 0.1), (0.1, 0.0)), cfg) is None
    # ... even after a collapse: PPO may still get there
    assert stop_reason(hist((0.9, 0.5), (0.2, 0.1)), cfg) is None


def test_a_perfect_iteration_cannot_be_beaten():
    cfg = PretrainConfig(patience=10)
    assert stop_reason(hist((0.5, 0.4), (0.97, 0.9), (1.0, 0.99)), cfg) is None
    assert stop_reason(hist((0.5, 0.4), (0.97, 0.9), (1.0, 1.0)), cfg) == "perfect"


def test_patience_counts_iterations_since_the_first_best():
    cfg = PretrainConfig(patience=3)
    h = [(0.96, 0.8), (0.99, 0.9), (0.98, 0.9), (0.99, 0.9)]  # a tie is no improvement
    assert stop_reason(hist(*h), cfg) is None
    assert stop_reason(hist(*h, (0.97, 0.95)), cfg) == "patience"


def test_collapse_stops_once_an_expert_exists():
    cfg = PretrainConfig(patience=50)
    assert stop_reason(hist((0.96, 0.8), (0.99, 0.9), (0.6, 0.5)), cfg) is None
    assert stop_reason(hist((0.96, 0.8), (0.99, 0.9), (0.4, 0.3)), cfg) == "collapse"


def test_stop_at_det_sr_for_smoke_ladders():
    assert stop_reason(hist((0.1, 0.0), (0.42, 0.3)), PretrainConfig(stop_at_det_sr=0.4)) == "stop_at_det_sr"


def test_pickcube_lite_defaults_and_maniskill_keeps_its_own(monkeypatch):
    lite = PretrainConfig.for_env("pickcube-lite")
    assert (lite.num_envs, lite.update_epochs, lite.num_minibatches, lite.learning_rate) == (256, 4, 16, 1e-3)
    assert lite.num_envs * lite.num_steps // lite.num_minibatches == 800  # ManiSkill PPO's minibatch size
    assert lite.max_wall_s == float("inf")  # the ladder must not depend on the machine's load
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ms = PretrainConfig.for_env("maniskill:PickCube-v1", patience=3)
    assert ms.learning_rate == 3e-4 and ms.critic_lr == 3e-4 and ms.patience == 3


def test_a_tiny_pretraining_run_records_why_it_stopped(tmp_path):
    index = run_pretrain("pickcube-lite", seed=0, root=tmp_path, num_envs=8, num_steps=10, total_timesteps=160,
                         num_minibatches=2, update_epochs=1, num_eval_envs=4, critic_episodes=8, critic_epochs=1)
    pre = index["pretrain"]
    assert pre["iterations_run"] == 2 and pre["stop_reason"] == "total_timesteps" and pre["seed"] == 0
    assert pre["wall_s"] > 0 and pre["max_wall_s"] is None  # infinite: written as null, not Infinity
    text = (ck.ladder_dir("pickcube-lite", tmp_path) / "index.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert index["source"] == "built" and index["dir"] == str(ck.ladder_dir("pickcube-lite", tmp_path))
    on_disk = ck.read_index("pickcube-lite", tmp_path)
    assert on_disk["pretrain"]["stop_reason"] == "total_timesteps" and on_disk["source"] == "built"
    assert "start" in on_disk["roles"] and "critic-optimal" in on_disk["roles"]
    # the critic's metadata says what it was fitted on
    meta = ck.read_meta(on_disk["roles"]["critic-optimal"]["path"])
    assert meta["fitted_on"] == "optimal" and meta["gamma"] == pytest.approx(0.8)


@pytest.mark.parametrize("env_id,mode", [("maniskill:PickCube-v1", "pd_joint_delta_pos"),
                                         ("pickcube-lite", "pd_ee_delta_pos")])
def test_pretraining_builds_its_envs_with_the_controller_finetuning_uses(monkeypatch, tmp_path, env_id, mode):
    """A ladder must fit the runs that use it: finetuning's `control_mode = auto` is the seed's
    pd_joint_delta_pos (8 actions) on maniskill: envs, so pretraining's envs use it too (they
    used the env's 4-action default, and CFG04 then refused every ladder policy)."""
    import engine.train.pretrain as pt

    seen: list = []

    class Made(Exception):
        pass

    def fake_make_env(env, n, **kw):
        seen.append(kw.get("control_mode"))
        raise Made

    monkeypatch.setattr(pt, "make_env", fake_make_env)
    with pytest.raises(Made):
        run_pretrain(env_id, root=tmp_path)
    assert seen == [mode]
