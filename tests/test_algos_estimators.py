"""The estimators and update beyond the seed's matrix (issue 22): TD(n) against a per-element
reference, sarsa / two-stage / rank-q on tiny synthetic data whose true ranking is known, and the
RECAP update's push-away of negative-advantage actions."""
from __future__ import annotations

import pytest
import torch

from engine.algos.gae import gae
from engine.algos.rank_q import fit_rank_q, group_pairs, neighbour_pairs, rank_q_advantages
from engine.algos.recap import recap_update, recap_weights
from engine.algos.sarsa import fit_sarsa_mc, fit_sarsa_td, sarsa_advantages
from engine.algos.td import discounted_returns, td_advantages
from engine.algos.two_stage import fit_two_stage, two_stage_advantages
from engine.nets import Actor


def reference_td(r, v, nv, term, trunc, gamma, n):
    """Per-element n-step return written as a plain loop."""
    T, N = len(r), len(r[0])
    ret = [[0.0] * N for _ in range(T)]
    for e in range(N):
        for t in range(T):
            g, j = 0.0, 0
            while True:
                g += gamma ** j * r[t + j][e]
                if term[t + j][e]:
                    break
                if trunc[t + j][e] or t + j == T - 1 or j == n - 1:
                    g += gamma ** (j + 1) * nv[t + j][e]
                    break
                j += 1
            ret[t][e] = g
    return ret


def _window(seed=0, T=23, N=7):
    g = torch.Generator().manual_seed(seed)
    r = (torch.rand(T, N, generator=g) < 0.15).float()
    v = torch.randn(T, N, generator=g)
    nv = torch.randn(T, N, generator=g)
    term = torch.rand(T, N, generator=g) < 0.08
    trunc = (torch.rand(T, N, generator=g) < 0.08) & ~term
    return r, v, nv, term, trunc


@pytest.mark.parametrize("n", [1, 2, 5, 20, 100])
def test_td_matches_the_reference(n):
    r, v, nv, term, trunc = _window()
    adv, ret = td_advantages(r, v, nv, term, trunc, 0.8, n)
    ref = torch.tensor(reference_td(r.tolist(), v.tolist(), nv.tolist(), term.tolist(), trunc.tolist(), 0.8, n))
    torch.testing.assert_close(ret, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(adv, ref - v, rtol=1e-5, atol=1e-5)


def test_td1_is_gae_lambda0_and_td_window_is_gae_lambda1():
    r, v, nv, term, trunc = _window(1)
    torch.testing.assert_close(td_advantages(r, v, nv, term, trunc, 0.9, 1)[0], gae(r, v, nv, term, trunc, 0.9, 0.0)[0])
    # lambda = 1 telescopes only where next_values[t] = values[t+1] inside an episode
    nv_c = nv.clone()
    nv_c[:-1] = torch.where(term[:-1] | trunc[:-1], nv[:-1], v[1:])
    torch.testing.assert_close(td_advantages(r, v, nv_c, term, trunc, 0.9, 23)[0],
                               gae(r, v, nv_c, term, trunc, 0.9, 1.0)[0], rtol=1e-5, atol=1e-5)


def test_discounted_returns_by_hand():
    r = torch.tensor([[0.0], [0.0], [1.0], [0.0], [0.0]])
    term = torch.tensor([[False], [False], [True], [False], [False]])
    trunc = torch.zeros_like(term)
    out = discounted_returns(r, term, trunc, 0.5, next_values=torch.full_like(r, 4.0))
    # 0.25, 0.5, 1 up to the success; then a new episode that the window cuts: bootstrap 0.5 * 4 at t = 4
    torch.testing.assert_close(out.view(-1), torch.tensor([0.25, 0.5, 1.0, 0.5 * 2.0, 2.0]))
    with pytest.raises(ValueError):
        td_advantages(r, r, r, term, trunc, 0.5, 0)


def _bandit(n_states=64, k=6, seed=0):
    """States with a large value offset and actions whose first coordinate adds a small bonus."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n_states, 3, generator=g)
    obs = s.repeat_interleave(k, 0)
    act = torch.rand(n_states * k, 2, generator=g) * 2 - 1
    y = 3.0 * obs[:, 0] + 0.5 * act[:, 0]           # cross-state variance >> within-state
    return obs, act, y, torch.arange(n_states).repeat_interleave(k)


def _within_state_rank_agreement(a, truth, group):
    i, j = group_pairs(group)
    return float(((a[i] - a[j]) * (truth[i] - truth[j]) > 0).float().mean())


def test_group_and_neighbour_pairs():
    i, j = group_pairs(torch.tensor([0, 1, 0, 0, 2]))
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 2), (0, 3), (2, 3)]
    obs = torch.tensor([[0.0], [0.1], [5.0], [5.1], [0.05]])
    i, j = neighbour_pairs(obs, 1, exclude=torch.tensor([0, 0, 1, 1, 2]))
    pairs = dict(zip(i.tolist(), j.tolist()))
    assert pairs[0] == 4 and pairs[1] == 4 and pairs[4] in (0, 1)     # nearest outside its own trajectory
    assert all(a != b for a, b in pairs.items())


def test_rank_q_orders_actions_within_states():
    obs, act, y, group = _bandit()
    res = fit_rank_q(obs, act, y, group_pairs(group), steps=400, width=64, generator=torch.Generator().manual_seed(0))
    a = rank_q_advantages(res, obs, act)
    assert res.stats["pairs"] > 0 and res.stats["pair_accuracy"] > 0.85
    assert _within_state_rank_agreement(a, act[:, 0], group) > 0.85
    # centring subtracts a function of the state (the mean score of the policy's actions there):
    # the within-state order stays, and the policy's own actions score 0 on average
    calls = []

    def pol(o):
        calls.append(1)
        return torch.tanh(o[:, :2] * len(calls))

    centred = rank_q_advantages(res, obs, act, policy=pol, center_samples=4)
    assert len(calls) == 4
    assert _within_state_rank_agreement(centred, act[:, 0], group) == _within_state_rank_agreement(a, act[:, 0], group)
    calls.clear()
    on_policy = torch.stack([rank_q_advantages(res, obs, pol(obs)) for _ in range(4)]).mean(0)
    calls.clear()
    base = on_policy - rank_q_advantages(res, obs, act) + centred   # = mean f(s, policy) - baseline
    assert base.abs().max() < 1e-4


def test_rank_q_with_no_ordered_pair_stays_untrained():
    obs, act, _, group = _bandit(8, 3)
    res = fit_rank_q(obs, act, torch.zeros(len(obs)), group_pairs(group), steps=5, width=8)
    assert res.stats["pairs"] == 0


def test_two_stage_recovers_the_residual():
    obs, act, y, group = _bandit()
    res = fit_two_stage(obs, act, y, steps=600, width=64, generator=torch.Generator().manual_seed(0))
    a = two_stage_advantages(res, obs, act)
    assert _within_state_rank_agreement(a, act[:, 0], group) > 0.8
    assert res.stats["residual_std"] < y.std()


def test_sarsa_mc_and_td_give_q_minus_v():
    obs, act, y, group = _bandit()
    res = fit_sarsa_mc(obs, act, y, steps=600, width=64, generator=torch.Generator().manual_seed(0))
    a = sarsa_advantages(res, obs, act)
    assert a.shape == (len(obs),) and res.stats["target"] == "mc"
    assert torch.corrcoef(torch.stack([a, act[:, 0]]))[0, 1] > 0.3
    # td: one-step transitions that all terminate, reward = y: Q -> y, V -> mean over the data's actions
    term = torch.ones(len(obs), dtype=torch.bool)
    res = fit_sarsa_td(obs, act, y, obs, term, gamma=0.8, steps=50, generator=torch.Generator().manual_seed(0))
    assert res.stats["target"] == "td" and sarsa_advantages(res, obs, act).shape == (len(obs),)


def test_recap_weights_and_push_away():
    adv = torch.tensor([2.0, -2.0, 0.5, -0.5])
    pos, w = recap_weights(adv, beta=1.0, max_weight=5.0, normalize=False)
    assert pos.tolist() == [True, False, True, False]
    torch.testing.assert_close(w, torch.tensor([5.0, 5.0, 0.5, 0.5]).exp().clamp(max=5.0))
    torch.manual_seed(0)
    actor = Actor(3, 2, layers=1, width=16)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(256, 3, generator=g)
    act = actor.act(obs, generator=g).detach()
    adv = torch.randn(256, generator=g)
    before = actor.log_prob(obs, act).detach()
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    st = recap_update(actor, opt, obs, act, adv, beta=1.0, max_weight=20.0, alpha=1.0, update_epochs=5,
                      num_minibatches=4, max_grad_norm=0.5, generator=g)
    change = actor.log_prob(obs, act).detach() - before
    assert st["grad_steps"] == 20 and 0.3 < st["pos_ratio"] < 0.7
    assert change[adv > 0].mean() > change[adv < 0].mean()
    assert change[adv < 0].mean() < 0        # the bad actions are pushed away, not just down-weighted
