"""The seed's IQL recipe (engine.algos.iql_seed): n-step targets by hand, and the fit on a tiny
dataset whose values are known."""
from __future__ import annotations

import pytest
import torch

from engine.algos.iql import iql_advantages, iql_values
from engine.algos.iql_seed import fit_iql_seed, nstep_targets


def test_nstep_targets_by_hand():
    gamma = 0.5
    # one env, T = 4: rewards at t=1 (not terminal) and t=3 (success)
    r = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    nxt = torch.arange(4, dtype=torch.float32).view(4, 1, 1) + 10.0     # next_obs[t] = 10 + t
    term = torch.tensor([[False], [False], [False], [True]])
    G, boot, disc = nstep_targets(r, nxt, term, term, n=2, gamma=gamma)
    torch.testing.assert_close(G.view(-1), torch.tensor([0.5, 1.0, 0.5, 1.0]))
    torch.testing.assert_close(boot.view(-1), torch.tensor([11.0, 12.0, 13.0, 13.0]))
    # t=0, t=1: bootstrapped after 2 steps; t=2: the success at t=3 lies inside -> no bootstrap
    torch.testing.assert_close(disc.view(-1), torch.tensor([0.25, 0.25, 0.0, 0.0]))
    # n = 1 is the one-step target
    G1, boot1, disc1 = nstep_targets(r, nxt, term, term, n=1, gamma=gamma)
    torch.testing.assert_close(G1, r)
    torch.testing.assert_close(disc1.view(-1), torch.tensor([0.5, 0.5, 0.5, 0.0]))


def test_nstep_targets_stop_at_a_time_limit_and_bootstrap_there():
    r = torch.zeros(3, 1)
    nxt = torch.tensor([[[1.0]], [[2.0]], [[3.0]]])
    done = torch.tensor([[True], [False], [False]])      # a time-limit end at t=0 (not terminated)
    G, boot, disc = nstep_targets(r, nxt, torch.zeros_like(done), done, n=3, gamma=0.9)
    assert boot[0].item() == 1.0 and disc[0].item() == pytest.approx(0.9)      # stops at its own end
    assert boot[1].item() == 3.0 and disc[1].item() == pytest.approx(0.81)     # window end after 2 steps


def test_fit_iql_seed_learns_the_one_step_values():
    # Terminal one-step dataset whose return depends on the state only: Q(s, a) = V(s) = G(s).
    g = torch.Generator().manual_seed(0)
    n = 512
    obs = torch.randn(n, 3, generator=g)
    act = torch.rand(n, 1, generator=g) * 2 - 1
    G, disc = 0.5 + 0.4 * torch.tanh(obs[:, 0]), torch.zeros(n)
    # a fast target (polyak 0.1) so that V catches up with Q within a CI-sized number of steps
    res = fit_iql_seed(obs, act, G, obs, disc, tau=0.5, epochs=1000, max_steps=300, patience=1000, polyak=0.1,
                       generator=g)
    test_obs = torch.randn(256, 3, generator=g)
    truth = 0.5 + 0.4 * torch.tanh(test_obs[:, 0])
    v = iql_values(res, test_obs)
    assert torch.corrcoef(torch.stack([v, truth]))[0, 1].item() > 0.9
    assert iql_advantages(res, test_obs, torch.rand(256, 1, generator=g)).abs().mean().item() < 0.1
    assert res.stats["best_epoch"] >= 1 and res.stats["transitions"] == n
    assert res.stats["epochs_planned"] == 300 // 2                   # the step cap bounds the epochs (2 batches each)


def test_fit_iql_seed_rejects_a_dataset_too_small_to_split():
    with pytest.raises(ValueError, match="at least 2"):
        fit_iql_seed(torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1), torch.zeros(1, 2), torch.zeros(1), tau=0.7)
