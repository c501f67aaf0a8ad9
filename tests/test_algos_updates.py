"""PPO and AWR updates, and the advantage-regression option, on small fixed batches."""
from __future__ import annotations

import math

import pytest
import torch

from engine.algos.awr import awr_update, awr_weights
from engine.algos.ppo import minibatch_indices, ppo_update
from engine.algos.regress import regress_advantages
from engine.nets import Actor, Critic



OBS, ACT, B = 4, 2, 256


def make_batch(seed=0, actor=None, critic=None):
    torch.manual_seed(seed)
    actor = actor or Actor(OBS, ACT, layers=2, width=32, logstd_init=-0.5)
    critic = critic or Critic(OBS, layers=2, width=32)
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, OBS, generator=g)
    actions, logprobs = actor.act_with_logprob(obs, generator=g)
    adv = torch.where(torch.rand(B, generator=g) < 0.5, 1.0, -1.0)
    returns = torch.randn(B, generator=g) + 2.0
    with torch.no_grad():
        values = critic(obs)
    batch = dict(obs=obs, actions=actions, logprobs=logprobs, advantages=adv, returns=returns, values=values)
    return actor, critic, batch


PPO_KW = dict(update_epochs=4, num_minibatches=4, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5,
              max_grad_norm=0.5, target_kl=None, norm_adv=True)


def surrogate(actor, batch, clip=0.2):
    with torch.no_grad():
        ratio = (actor.log_prob(batch["obs"], batch["actions"]) - batch["logprobs"]).exp()
        a = batch["advantages"]
        a = (a - a.mean()) / (a.std() + 1e-8)
        return torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean().item()


def params_of(m):
    return [p.detach().clone() for p in m.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_minibatch_indices_partition():
    parts = minibatch_indices(10, 3, torch.Generator().manual_seed(0))
    assert len(parts) == 3
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert len(minibatch_indices(2, 8)) == 2   # more minibatches than samples: size-1 minibatches


def test_ppo_increases_logprob_of_positive_advantage_actions():
    actor, critic, batch = make_batch()
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=1e-3)
    before = surrogate(actor, batch)
    stats = ppo_update(actor, critic, opt, batch, generator=torch.Generator().manual_seed(0), **PPO_KW)
    after = surrogate(actor, batch)
    assert after < before - 0.01
    with torch.no_grad():
        dlogp = actor.log_prob(batch["obs"], batch["actions"]) - batch["logprobs"]
    pos = batch["advantages"] > 0
    assert dlogp[pos].mean() > 0 > dlogp[~pos].mean()
    assert stats["epochs_run"] == 4 and not stats["stopped_early"]
    assert stats["grad_steps"] == 16
    assert stats["approx_kl"] > 0 and 0 <= stats["clipfrac"] <= 1
    for key in ("pg_loss", "v_loss", "approx_kl", "clipfrac", "epochs_run", "stopped_early"):
        assert key in stats


def test_ppo_value_loss_decreases():
    actor, critic, batch = make_batch(1)
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=3e-3)
    losses = [ppo_update(actor, critic, opt, batch, **PPO_KW)["v_loss"] for _ in range(5)]
    assert losses[-1] < 0.5 * losses[0]


def test_ppo_target_kl_stops_after_first_epoch():
    actor, critic, batch = make_batch(2)
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=1e-3)
    kw = dict(PPO_KW, update_epochs=10, target_kl=1e-9)
    stats = ppo_update(actor, critic, opt, batch, **kw)
    assert stats["stopped_early"] is True
    assert stats["epochs_run"] == 1
    assert stats["grad_steps"] == kw["num_minibatches"]
    # Off (None, or the config's 100) never stops.
    stats = ppo_update(actor, critic, opt, batch, **dict(kw, target_kl=100.0))
    assert stats["epochs_run"] == 10 and not stats["stopped_early"]


def test_ppo_warmup_moves_only_the_critic():
    actor, critic, batch = make_batch(3)
    actor.logstd.requires_grad_(True)
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=1e-3)
    a0, c0 = params_of(actor), params_of(critic)
    stats = ppo_update(actor, critic, opt, batch, train_policy=False, **PPO_KW)
    assert same(a0, params_of(actor))
    assert not same(c0, params_of(critic))
    assert stats["v_loss"] > 0
    assert stats["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    # A later policy step after warm-up still works with the same optimizer.
    ppo_update(actor, critic, opt, batch, **PPO_KW)
    assert not same(a0, params_of(actor))


def test_ppo_without_critic():
    actor, _, batch = make_batch(4)
    batch = {k: v for k, v in batch.items() if k not in ("returns", "values")}
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    a0 = params_of(actor)
    before = surrogate(actor, batch)
    stats = ppo_update(actor, None, opt, batch, **PPO_KW)
    assert stats["v_loss"] == 0.0
    assert math.isnan(stats["explained_variance"])
    assert not same(a0, params_of(actor))
    assert surrogate(actor, batch) < before
    # Warm-up without a critic: nothing to train, nothing moves.
    a1 = params_of(actor)
    stats = ppo_update(actor, None, opt, batch, train_policy=False, **PPO_KW)
    assert same(a1, params_of(actor)) and stats["grad_steps"] == 0


# ---------------------------------------------------------------------------------------- AWR


def test_awr_weights_clip_and_exp():
    adv = torch.tensor([-1.0, 0.0, 0.5, 10.0, 1000.0])
    w = awr_weights(adv, beta=0.5, max_weight=20.0, normalize=False)
    torch.testing.assert_close(w[:3], torch.exp(adv[:3] / 0.5))
    assert w[3].item() == pytest.approx(20.0) and w[4].item() == pytest.approx(20.0)
    assert torch.isfinite(w).all() and w.max().item() <= 20.0 + 1e-4


def test_awr_weights_normalize_standardises():
    g = torch.Generator().manual_seed(0)
    adv = 5.0 + 3.0 * torch.randn(1000, generator=g)
    w = awr_weights(adv, beta=1.0, max_weight=float("inf"), normalize=True)
    z = torch.log(w)
    assert z.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert z.std().item() == pytest.approx(1.0, abs=1e-4)
    # Scale invariance: normalised weights ignore the advantages' scale and offset.
    torch.testing.assert_close(w, awr_weights(10 * adv - 7, 1.0, float("inf"), True), rtol=1e-4, atol=1e-4)


def _seed_weights_by_hand(adv: list[float], beta: float, max_weight: float) -> list[float]:
    """The seed's weights, computed with plain floats: batch-standardise (unbiased std), exp(z / beta),
    clamp at max_weight."""
    n = len(adv)
    mean = sum(adv) / n
    std = math.sqrt(sum((a - mean) ** 2 for a in adv) / (n - 1))
    return [min(math.exp(((a - mean) / (std + 1e-8)) / beta), max_weight) for a in adv]


def test_awr_weights_match_a_hand_computation():
    # adv 0, 1, 2, 3: mean 1.5, std sqrt(5/3) = 1.29099; z = -1.1619, -0.3873, 0.3873, 1.1619;
    # exp(z / 0.5) = 0.09791, 0.46089, 2.16970, 10.2139 -> clamped at 5.
    w = awr_weights(torch.tensor([0.0, 1.0, 2.0, 3.0]), beta=0.5, max_weight=5.0)  # normalize by default
    torch.testing.assert_close(w, torch.tensor([0.09791, 0.46089, 2.16970, 5.0]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(w, torch.tensor(_seed_weights_by_hand([0, 1, 2, 3], 0.5, 5.0)))
    # The raw form (option): exp(A / beta), clamped.
    raw = awr_weights(torch.tensor([0.0, 1.0, 2.0, 3.0]), beta=1.0, max_weight=5.0, normalize=False)
    torch.testing.assert_close(raw, torch.tensor([1.0, math.e, 5.0, 5.0]))  # exp(2) = 7.39 > 5


@pytest.mark.parametrize("rescale", [True, False])
def test_awr_update_loss_is_the_seeds_per_minibatch_mean_one_form(rescale):
    """Loss of every minibatch = -mean(w_mb * n / sum(w_mb) * logp) with w standardised, clamped
    over the whole batch (checked against plain-float weights and log-probs taken before the step)."""
    actor, _, batch = make_batch(7)
    obs, act = batch["obs"][:8], batch["actions"][:8]
    adv = [0.3, -0.1, 0.05, 0.0, 0.2, -0.4, 0.1, 0.02]
    w = _seed_weights_by_hand(adv, beta=0.5, max_weight=3.0)
    with torch.no_grad():
        logp = actor.log_prob(obs, act).tolist()
    mbs = minibatch_indices(8, 2, torch.Generator().manual_seed(3))
    mb = mbs[0].tolist()
    ws = [w[i] for i in mb]
    if rescale:
        ws = [x * len(ws) / sum(ws) for x in ws]
    expect_first = -sum(x * logp[i] for x, i in zip(ws, mb)) / len(mb)
    opt = torch.optim.SGD(actor.parameters(), lr=0.0)  # parameters stay: every step sees the same logp
    stats = awr_update(actor, opt, obs, act, torch.tensor(adv), beta=0.5, max_weight=3.0, rescale=rescale,
                       update_epochs=1, num_minibatches=1, max_grad_norm=None)
    one = [x * 8 / sum(w) for x in w] if rescale else w
    assert stats["loss"] == pytest.approx(-sum(x * l for x, l in zip(one, logp)) / 8, rel=1e-5)
    stats = awr_update(actor, opt, obs, act, torch.tensor(adv), beta=0.5, max_weight=3.0, rescale=rescale,
                       update_epochs=1, num_minibatches=2, max_grad_norm=None,
                       generator=torch.Generator().manual_seed(3))
    ws2 = [w[i] for i in mbs[1].tolist()]
    if rescale:
        ws2 = [x * len(ws2) / sum(ws2) for x in ws2]
    expect_second = -sum(x * logp[i] for x, i in zip(ws2, mbs[1].tolist())) / len(ws2)
    assert stats["loss"] == pytest.approx((expect_first + expect_second) / 2, rel=1e-5)
    assert stats["weight_max"] == pytest.approx(max(w), rel=1e-5)


def test_awr_update_prefers_high_advantage_actions():
    actor, _, batch = make_batch(5)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    obs, act, adv = batch["obs"], batch["actions"], batch["advantages"]
    with torch.no_grad():
        lp0 = actor.log_prob(obs, act)
    stats = awr_update(actor, opt, obs, act, adv, beta=0.5, max_weight=20.0, normalize=False,
                       update_epochs=10, num_minibatches=4, max_grad_norm=0.5,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        d = actor.log_prob(obs, act) - lp0
    pos = adv > 0
    assert d[pos].mean() > d[~pos].mean() + 0.05
    assert stats["grad_steps"] == 40
    assert stats["frac_pos_adv"] == pytest.approx(pos.float().mean().item())
    assert stats["weight_max"] == pytest.approx(math.exp(2.0), rel=1e-5)
    assert stats["frac_clipped"] == 0.0
    for key in ("loss", "weight_mean", "weight_max", "frac_clipped", "frac_pos_adv"):
        assert key in stats


def test_awr_update_reports_clipping():
    actor, _, batch = make_batch(6)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-4)
    adv = torch.linspace(-2, 2, B)
    stats = awr_update(actor, opt, batch["obs"], batch["actions"], adv, beta=0.5, max_weight=2.0,
                       normalize=False, update_epochs=1, num_minibatches=1, max_grad_norm=0.5)
    expect = (adv / 0.5 >= math.log(2.0)).float().mean().item()
    assert stats["frac_clipped"] == pytest.approx(expect)
    assert stats["weight_max"] == pytest.approx(2.0)


# ------------------------------------------------------------------------------- regression


def test_regress_advantages_fits_smooth_targets():
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(512, 3, generator=g)
    act = torch.randn(512, 2, generator=g)
    y = 3.0 * obs[:, 0] - 2.0 * act[:, 1] + 10.0
    pred = regress_advantages(obs, act, y, layers=2, width=64, epochs=30, lr=3e-3,
                              generator=torch.Generator().manual_seed(1))
    assert pred.shape == (512,) and not pred.requires_grad
    resid = ((pred - y) ** 2).mean() / y.var()
    assert resid.item() < 0.05
    pred2 = regress_advantages(obs, act, y, layers=2, width=64, epochs=30, lr=3e-3,
                               generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pred, pred2)   # reproducible per generator
