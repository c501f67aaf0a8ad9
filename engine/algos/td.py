"""n-step TD advantages, TD(N), over a [T, N] trajectory window (the seed repository's
"TD(N)": its README's ranking table has TD(1) rho 0.071, TD(5) 0.343, TD(20) 0.960 against MC
ground truth; it asks whether a large N compensates for bootstrapping error, Phase 2b).

Same conventions as `engine.algos.gae` (values[t] = V(s_t), next_values[t] = V of the REAL next
state, `terminated` = task end with no bootstrap, `truncated` = time limit, bootstrap; the end of
the window is treated like a truncation). For each step t the n-step return

    G_t^(n) = sum_{j <= j*} gamma^j r_{t+j}  +  gamma^(j*+1) (1 - term_{t+j*}) next_values[t+j*]

stops at j* = the first j < n where the episode ended (t+j done), the window ended (t+j = T-1)
or j = n-1; the advantage is A_t = G_t^(n) - V(s_t) and `returns` = G_t^(n) (the critic's target).
n = 1 is the one-step TD error (GAE with lambda 0); an n at least the window's length is the
Monte-Carlo return bootstrapped only where the episode or the window ends (GAE with lambda 1).

`discounted_returns` is the n = infinity case with V = 0 inside the window: the return-to-go
the regression-based estimators (sarsa's `mc` target, two-stage, rank-q) fit.

For the ranking analysis: call it on branch tensors [T, B] (one branch per candidate action,
candidate at t = 0) and read row 0: `td_advantages(...)[0][0]` is TD(n)'s A(s, a_k).
"""
from __future__ import annotations

import torch

__all__ = ["td_advantages", "discounted_returns"]


@torch.no_grad()
def td_advantages(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                  terminated: torch.Tensor, truncated: torch.Tensor, gamma: float,
                  n: int, bootstrap_success: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, n-step returns), both [T, N] (module docstring). `n` >= 1. `bootstrap_success`
    bootstraps from next_values at terminated steps too, as `engine.algos.gae` does for the seed's PPO
    (a success treated like a time limit), so that TD(n) and GAE see episode ends alike."""
    if n < 1:
        raise ValueError(f"td_advantages: n must be >= 1, got {n}")
    if rewards.dim() != 2:
        raise ValueError(f"td_advantages expects [T, N] tensors, got rewards of shape {tuple(rewards.shape)}")
    shape = rewards.shape
    for name, t in (("values", values), ("next_values", next_values),
                    ("terminated", terminated), ("truncated", truncated)):
        if t.shape != shape:
            raise ValueError(f"td_advantages: {name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    dtype = values.dtype if values.is_floating_point() else torch.float32
    T = shape[0]
    r = rewards.detach().to(dtype)
    nv = next_values.detach().to(dtype)
    term = terminated.detach().to(torch.bool)
    done = term | truncated.detach().to(torch.bool)
    window_end = torch.zeros_like(done)
    window_end[-1] = True
    stop_here = done | window_end          # j* may land on these steps whatever n is
    boot = nv if bootstrap_success else (~term).to(dtype) * nv  # what follows step t+j when the sum stops there

    ret = torch.zeros_like(r)
    alive = torch.ones_like(done)           # the sum for t has not stopped before offset j
    for j in range(min(n, T)):
        rows = T - j                        # t in [0, rows) has a step t + j inside the window
        a = alive[:rows]
        disc = gamma ** j
        ret[:rows] += torch.where(a, disc * r[j:], torch.zeros_like(r[j:]))
        end = a & (stop_here[j:] | (j == n - 1))
        ret[:rows] += torch.where(end, (disc * gamma) * boot[j:], torch.zeros_like(r[j:]))
        alive[:rows] = a & ~end
    return ret - values.detach().to(dtype), ret


@torch.no_grad()
def discounted_returns(rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, gamma: float,
                       next_values: torch.Tensor | None = None) -> torch.Tensor:
    """Discounted return-to-go [T, N] along each episode of the window, bootstrapped with
    `next_values` (default 0) only where an episode is truncated or the window ends."""
    zeros = torch.zeros_like(rewards, dtype=torch.float32 if not rewards.is_floating_point() else rewards.dtype)
    nv = zeros if next_values is None else next_values
    return td_advantages(rewards, zeros, nv, terminated, truncated, gamma, rewards.shape[0])[1]
