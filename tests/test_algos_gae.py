"""GAE against a plain per-element reference recursion, a hand-computed case, and lambda = 1."""
from __future__ import annotations

import pytest
import torch

from engine.algos.gae import gae


def reference_gae(r, v, nv, term, trunc, gamma, lam):
    """Per-element, per-env Python recursion written independently of the vectorised one."""
    T, N = len(r), len(r[0])
    adv = [[0.0] * N for _ in range(T)]
    for n in range(N):
        nxt = 0.0  # A_{t+1}
        for t in reversed(range(T)):
            if term[t][n]:
                delta = r[t][n] - v[t][n]
                nxt = delta
            elif trunc[t][n] or t == T - 1:
                delta = r[t][n] + gamma * nv[t][n] - v[t][n]
                nxt = delta
            else:
                delta = r[t][n] + gamma * nv[t][n] - v[t][n]
                nxt = delta + gamma * lam * nxt
            adv[t][n] = nxt
    return adv


@pytest.mark.parametrize("gamma,lam", [(0.8, 0.9), (0.99, 0.95), (0.9, 0.0), (0.95, 1.0)])
def test_matches_reference_on_random_data(gamma, lam):
    g = torch.Generator().manual_seed(0)
    T, N = 37, 11
    r = (torch.rand(T, N, generator=g) < 0.1).float() + 0.1 * torch.rand(T, N, generator=g)
    v = torch.randn(T, N, generator=g)
    nv = torch.randn(T, N, generator=g)
    term = torch.rand(T, N, generator=g) < 0.08
    trunc = (torch.rand(T, N, generator=g) < 0.08) & ~term
    term[-1, 0] = True            # a termination on the last step of the window
    trunc[-1, 1] = True           # a truncation on the last step
    trunc[5, 2] = True            # a truncation mid-window
    term[5, 2] = False
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
    ref = torch.tensor(reference_gae(r.tolist(), v.tolist(), nv.tolist(), term.tolist(), trunc.tolist(), gamma, lam))
    torch.testing.assert_close(adv, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ret, adv + v)
    # Truncation at t=5 bootstraps from next_values[5] and cuts the trace.
    assert adv[5, 2].item() == pytest.approx(r[5, 2].item() + gamma * nv[5, 2].item() - v[5, 2].item(), abs=1e-6)
    # Termination at T-1: no bootstrap.
    assert adv[-1, 0].item() == pytest.approx(r[-1, 0].item() - v[-1, 0].item(), abs=1e-6)
    # Window end without termination: bootstrap.
    if not term[-1, 3]:
        assert adv[-1, 3].item() == pytest.approx(r[-1, 3].item() + gamma * nv[-1, 3].item() - v[-1, 3].item(),
                                                  abs=1e-6)


def test_hand_computed_small_case():
    # One env, T = 3: step0 normal, step1 truncated (bootstrap 2.0), step2 terminated with reward 1.
    gamma, lam = 0.5, 0.5
    r = torch.tensor([[0.0], [0.0], [1.0]])
    v = torch.tensor([[1.0], [1.0], [0.5]])
    nv = torch.tensor([[1.0], [2.0], [9.0]])   # nv[2] must be ignored (terminated)
    term = torch.tensor([[False], [False], [True]])
    trunc = torch.tensor([[False], [True], [False]])
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
    # t=2: delta = 1 - 0.5 = 0.5
    # t=1: delta = 0 + 0.5*2 - 1 = 0; trace cut -> A1 = 0
    # t=0: delta = 0 + 0.5*1 - 1 = -0.5; A0 = -0.5 + 0.25 * 0 = -0.5
    torch.testing.assert_close(adv, torch.tensor([[-0.5], [0.0], [0.5]]))
    torch.testing.assert_close(ret, torch.tensor([[0.5], [1.0], [1.0]]))

    # Same but no truncation at t=1: the trace carries A2 back.
    adv2, _ = gae(r, v, nv, term, torch.zeros_like(trunc), gamma, lam)
    # t=1: delta = 0 + 0.5*2 - 1 = 0, A1 = 0 + 0.25*0.5 = 0.125; t=0: A0 = -0.5 + 0.25*0.125
    torch.testing.assert_close(adv2, torch.tensor([[-0.5 + 0.25 * 0.125], [0.125], [0.5]]))


def test_bootstrap_success_adds_the_final_value_like_a_time_limit():
    # The seed's RL/ppo_finetune.py adds V(final_obs) at every episode end, successes included.
    gamma, lam = 0.5, 0.5
    r = torch.tensor([[0.0], [0.0], [1.0]])
    v = torch.tensor([[1.0], [1.0], [0.5]])
    nv = torch.tensor([[1.0], [2.0], [9.0]])
    term = torch.tensor([[False], [False], [True]])
    trunc = torch.zeros_like(term)
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam, bootstrap_success=True)
    # t=2: delta = 1 + 0.5*9 - 0.5 = 5.0 (bootstrapped); t=1: 0 + 0.5*2 - 1 = 0, A1 = 0.25*5 = 1.25
    # t=0: delta = -0.5, A0 = -0.5 + 0.25*1.25
    torch.testing.assert_close(adv, torch.tensor([[-0.5 + 0.3125], [1.25], [5.0]]))
    torch.testing.assert_close(ret, adv + v)
    # The trace is still cut at the success: a step after it does not flow back.
    r2 = torch.tensor([[1.0], [0.0]])
    term2 = torch.tensor([[True], [False]])
    adv2, _ = gae(r2, torch.zeros(2, 1), torch.tensor([[2.0], [3.0]]), term2, torch.zeros_like(term2), gamma, lam,
                  bootstrap_success=True)
    torch.testing.assert_close(adv2, torch.tensor([[1.0 + 0.5 * 2.0], [1.5]]))
    # Without the flag a success is not bootstrapped.
    adv3, _ = gae(r2, torch.zeros(2, 1), torch.tensor([[2.0], [3.0]]), term2, torch.zeros_like(term2), gamma, lam)
    assert adv3[0, 0].item() == 1.0


def test_lambda_one_is_mc_return_minus_value():
    g = torch.Generator().manual_seed(1)
    T, N, gamma = 20, 4, 0.9
    r = torch.rand(T, N, generator=g)
    v = torch.randn(T, N, generator=g)
    # Consistent next_values: V of the next visited state within the episode.
    nv = torch.cat([v[1:], torch.randn(1, N, generator=g)])
    term = torch.zeros(T, N, dtype=torch.bool)
    term[7, :] = True          # every env's first episode ends at t = 7
    term[T - 1, :] = True      # the second at the window end
    trunc = torch.zeros_like(term)
    adv, ret = gae(r, v, nv, term, trunc, gamma, 1.0)
    for n in range(N):
        for t in range(T):
            end = 7 if t <= 7 else T - 1
            G = sum(gamma ** (j - t) * r[j, n].item() for j in range(t, end + 1))
            assert adv[t, n].item() == pytest.approx(G - v[t, n].item(), abs=1e-5)
            assert ret[t, n].item() == pytest.approx(G, abs=1e-5)


def test_shape_check():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError):
        gae(x, x, torch.zeros(3, 3), x.bool(), x.bool(), 0.9, 0.9)
