"""Seed-fidelity fixes in the finetuning loop that need no checkpoint ladder (fresh networks,
pickcube-lite, a few envs): PPO warm-up length, iql-v-gae's lambda."""
from __future__ import annotations

import pytest
import torch

import engine.train.finetune as ft
from engine.config.schema import RunConfig
from engine.train.finetune import Finetuner


def tiny(**over) -> RunConfig:
    cfg = RunConfig(env="pickcube-lite", checkpoint="none", critic_checkpoint="none", num_envs=4, num_steps=8,
                    num_eval_envs=2, seed=0, num_minibatches=2, update_epochs=1)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def actor_moves_per_iteration(cfg: RunConfig) -> list[bool]:
    """For every training iteration: did the policy's parameters change?"""
    snaps: list[torch.Tensor] = []
    t = Finetuner(cfg)
    t.on_row = lambda row: snaps.append(torch.cat([p.detach().flatten().clone() for p in t.actor.parameters()]))
    try:
        assert t.run() == "done"
    finally:
        t.close()
    # snaps[0]: the initial evaluation's row; then one row per iteration
    return [not torch.equal(a, b) for a, b in zip(snaps[:-1], snaps[1:])]


@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_ppo_warmup_trains_only_the_critic_for_exactly_warmup_iters(warmup):
    cfg = tiny(estimator="gae", update="ppo", warmup_iters=warmup, total_timesteps=4 * 8 * 3)
    moved = actor_moves_per_iteration(cfg)
    assert moved == [i >= warmup for i in range(3)]


@pytest.mark.parametrize("lam", [0.3, 0.95])
def test_iql_v_gae_uses_the_configured_gae_lambda(monkeypatch, lam):
    seen: list[float] = []
    real = ft.gae

    def spy(*args, **kw):
        seen.append(args[6])
        return real(*args, **kw)

    monkeypatch.setattr(ft, "gae", spy)
    cfg = tiny(regime="offline", estimator="iql-v-gae", update="awr", data_checkpoint="none", gae_lambda=lam,
               iql_steps=5, num_iterations=1)
    t = Finetuner(cfg)
    try:
        assert t.run() == "done"
    finally:
        t.close()
    assert seen == [lam]
