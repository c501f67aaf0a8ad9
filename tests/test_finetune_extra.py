"""The estimators and update added beyond the seed's matrix (td, sarsa, two-stage, rank-q; recap)
run as points of the finetune matrix on CI-sized pickcube-lite configs from the shipped ladder,
in both regimes and with either update, and record their fit statistics."""
import math

import pytest

from engine import checkpoints as ck
from engine.config.schema import RunConfig
from engine.train.finetune import Finetuner

ENV = "pickcube-lite"


@pytest.fixture(autouse=True)
def shipped_ladder(monkeypatch):
    monkeypatch.setenv(ck.SHIPPED_LADDERS_ENV, "1")


def tiny(**over) -> RunConfig:
    cfg = RunConfig(env=ENV, checkpoint="start", num_envs=20, num_steps=50, num_eval_envs=50, seed=0,
                    num_minibatches=5, update_epochs=2, fit_steps=60, critic_width=64, total_timesteps=2000,
                    num_iterations=2, data_checkpoint="start")
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def run(cfg: RunConfig) -> list[dict]:
    rows: list[dict] = []
    t = Finetuner(cfg, on_row=rows.append)
    try:
        assert t.run() == "done"
    finally:
        t.close()
    return rows


@pytest.mark.parametrize("over", [
    dict(regime="online", estimator="td", td_n=5, update="awr"),
    dict(regime="offline", estimator="td", td_n=20, update="recap", critic_checkpoint="critic-expert"),
    dict(regime="online", estimator="sarsa", sarsa_target="td", update="ppo"),
    dict(regime="offline", estimator="sarsa", sarsa_target="mc", update="awr", critic_checkpoint="critic-expert"),
    dict(regime="online", estimator="two-stage", update="recap", recap_alpha=0.5),
    dict(regime="offline", estimator="rank-q", update="awr", rank_neighbours=4, critic_checkpoint="critic-expert"),
    dict(regime="online", estimator="rank-q", update="ppo"),
], ids=["td5-awr", "offline-td20-recap", "sarsa-td-ppo", "offline-sarsa-mc-awr", "two-stage-recap",
        "offline-rank-q-awr", "rank-q-ppo"])
def test_new_matrix_points_run_and_record(over):
    rows = run(tiny(**over))
    assert rows[0]["iteration"] == 0 and rows[-1]["iteration"] == 2
    for r in rows:
        assert 0.0 <= r["sr"] <= 1.0
    last = rows[-1]
    assert math.isfinite(last["adv_mean"]) and last["adv_std"] > 0     # the estimator says something
    if over["estimator"] in ("sarsa", "two-stage", "rank-q"):
        assert last["fit_s"] >= 0
    if over["estimator"] == "rank-q":
        assert last["fit_pairs"] > 0 and 0.0 <= last["fit_pair_accuracy"] <= 1.0
    if over["update"] == "recap":
        assert 0.0 < last["pos_ratio"] < 1.0 and math.isfinite(last["neg_loss"])
    if over["regime"] == "offline":
        assert rows[-1]["env_steps"] == rows[1]["env_steps"]


def test_td_with_n_past_the_window_is_gae_lambda_one():
    """td_n at least the window's length gives the same advantages as GAE with lambda 1 on the same batch."""
    t = Finetuner(tiny(regime="online", estimator="td", td_n=50, update="awr"))
    try:
        from engine.train.rollout import collect

        obs = t.env.reset(seed=0)
        ro, _ = collect(t.env, t.actor, obs, 50, generator=t.sample_gen)
        a_td = t.advantages(ro)[0].advantages
        t.cfg.estimator, t.cfg.gae_lambda = "gae", 1.0
        a_gae = t.advantages(ro)[0].advantages
    finally:
        t.close()
    assert (a_td - a_gae).abs().max() < 1e-4


@pytest.mark.parametrize("over", [
    dict(estimator="td", td_n=3, update="recap", total_timesteps=160),
    dict(estimator="sarsa", sarsa_target="mc", update="ppo", total_timesteps=80, fit_steps=10),
    dict(estimator="two-stage", update="awr", total_timesteps=80, fit_steps=10),
    dict(estimator="rank-q", update="recap", total_timesteps=80, fit_steps=10, rank_neighbours=2),
], ids=["td-recap", "sarsa-mc-ppo", "two-stage-awr", "rank-q-recap"])
def test_the_new_points_make_every_tensor_on_the_runs_device(over, tmp_path):
    """As tests/test_device.py checks the seed's matrix: no tensor factory call in engine/train or
    engine/algos forgets the device (a CUDA run would get CPU tensors), and the run resumes."""
    from test_device import TINY, ForgottenDeviceElsewhere

    cfg = RunConfig(**TINY, **over)
    with ForgottenDeviceElsewhere() as m:
        f = Finetuner(cfg, run_dir=tmp_path, device="cpu")
        try:
            assert f.run() == "done"
        finally:
            f.close()
    assert m.seen == []
    again = Finetuner(cfg, run_dir=tmp_path, device="cpu")
    try:
        again.load_resume(tmp_path / "checkpoints")
        assert again.iteration == f.num_iterations
    finally:
        again.close()
