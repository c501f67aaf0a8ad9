"""IQL: the expectile loss, and fit_iql on tiny datasets whose answers are known."""
from __future__ import annotations

import pytest
import torch

from engine.algos.iql import expectile_loss, fit_iql, iql_advantages, iql_values




def test_expectile_half_is_half_mse():
    g = torch.Generator().manual_seed(0)
    diff = torch.randn(1000, generator=g)
    assert torch.equal(expectile_loss(diff, 0.5), 0.5 * (diff ** 2).mean())


def test_expectile_asymmetry():
    under = torch.tensor([1.0])   # target - prediction > 0: prediction too low
    over = torch.tensor([-1.0])
    assert expectile_loss(under, 0.7).item() == pytest.approx(0.7)
    assert expectile_loss(over, 0.7).item() == pytest.approx(0.3)
    assert expectile_loss(under, 0.9) > expectile_loss(over, 0.9)


def expectile(values: torch.Tensor, tau: float) -> float:
    """The tau-expectile of an empirical distribution (bisection on the first-order condition)."""
    lo, hi = values.min().item(), values.max().item()
    for _ in range(100):
        m = (lo + hi) / 2
        d = values - m
        grad = (torch.abs(tau - (d < 0).float()) * d).sum().item()  # > 0: m too low
        lo, hi = (m, hi) if grad > 0 else (lo, m)
    return (lo + hi) / 2


def bandit_dataset(n_per=400, seed=0):
    """Two one-step states (terminated after one step), three actions each with known rewards,
    plus a two-step chain: c0 -(reward 0)-> c1 -(reward 1, terminal)."""
    g = torch.Generator().manual_seed(seed)
    s_a, s_b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    c0, c1 = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, -1.0])
    acts = torch.tensor([[-1.0], [0.0], [1.0]])
    rew = {0: torch.tensor([0.0, 0.5, 1.0]), 1: torch.tensor([1.0, 0.0, 0.0])}
    obs, act, r, nxt, term = [], [], [], [], []
    for si, s in enumerate((s_a, s_b)):
        ai = torch.randint(0, 3, (n_per,), generator=g)
        obs.append(s.expand(n_per, 3))
        act.append(acts[ai])
        r.append(rew[si][ai])
        nxt.append(torch.zeros(n_per, 3))
        term.append(torch.ones(n_per, dtype=torch.bool))
    for s, s2, rr, tt in ((c0, c1, 0.0, False), (c1, torch.zeros(3), 1.0, True)):
        obs.append(s.expand(n_per, 3))
        act.append(torch.zeros(n_per, 1))
        r.append(torch.full((n_per,), rr))
        nxt.append(s2.expand(n_per, 3))
        term.append(torch.full((n_per,), tt))
    data = [torch.cat(x) for x in (obs, act, r, nxt, term)]
    return data, (s_a, s_b, c0, c1), acts, rew


def test_fit_iql_recovers_rewards_and_expectiles():
    (obs, act, r, nxt, term), (s_a, s_b, c0, c1), acts, rew = bandit_dataset()
    tau, gamma = 0.7, 0.9
    res = fit_iql(obs, act, r, nxt, term, gamma=gamma, tau=tau, steps=1500, batch_size=256, lr=1e-3,
                  q_layers=2, width=64, polyak=0.02, generator=torch.Generator().manual_seed(0))
    # Q approaches the true one-step rewards.
    states = torch.stack([s_a] * 3 + [s_b] * 3)
    q = res.q_net(states, torch.cat([acts, acts])).detach()
    torch.testing.assert_close(q, torch.cat([rew[0], rew[1]]), atol=0.06, rtol=0)
    # V approaches the tau-expectile of Q over the dataset's (uniform) actions.
    v = iql_values(res, torch.stack([s_a, s_b, c0, c1]))
    # (expectiles 0.654 and 0.538, well above the means 0.5 and 0.333)
    for i in (0, 1):
        e, mean = expectile(rew[i], tau), rew[i].mean().item()
        assert v[i].item() == pytest.approx(e, abs=0.07)
        assert abs(v[i].item() - e) < abs(v[i].item() - mean)
    # Bootstrapping through V(s'): Q(c0) = gamma * V(c1) = gamma.
    assert v[3].item() == pytest.approx(1.0, abs=0.05)
    assert v[2].item() == pytest.approx(gamma, abs=0.06)
    # Advantages: Q - V, best action positive, worst negative.
    adv = iql_advantages(res, states, torch.cat([acts, acts]))
    assert adv.shape == (6,)
    assert adv[2] > 0 > adv[0] and adv[3] > 0 > adv[4]
    for key in ("v_loss", "q_loss", "q_mean", "v_mean", "steps"):
        assert key in res.stats


def test_fit_iql_is_reproducible_per_generator():
    (obs, act, r, nxt, term), *_ = bandit_dataset(n_per=50)
    kw = dict(gamma=0.9, tau=0.7, steps=50, width=32, generator=None)
    a = fit_iql(obs, act, r, nxt, term, **dict(kw, generator=torch.Generator().manual_seed(3)))
    b = fit_iql(obs, act, r, nxt, term, **dict(kw, generator=torch.Generator().manual_seed(3)))
    torch.testing.assert_close(iql_values(a, obs), iql_values(b, obs))
