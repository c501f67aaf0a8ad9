"""Generalised Advantage Estimation (Schulman et al. 2016) over a [T, N] rollout window.

Conventions (matching `engine.envs.base` episode semantics with autoreset):

- `values[t]`       = V(s_t), the observation the policy acted on at step t.
- `next_values[t]`  = V(s_{t+1}) of the REAL next state, i.e. V(final_obs[t]). Where the episode
  did not end at t this is simply V(obs[t+1]); where it ended, the caller evaluates the critic on
  `StepResult.final_obs` (the observation before the autoreset), so a truncated episode can be
  bootstrapped correctly.
- `terminated[t]`   : the task ended at t (success). No bootstrap: the value of what follows is 0.
- `truncated[t]`    : the time limit ended the episode at t. Bootstrap from `next_values[t]`.
- The end of the window (t = T-1) is treated like a truncation: bootstrap from
  `next_values[T-1]`, and no trace crosses it.

Recursion, per env, backwards in t:

    delta_t = r_t + gamma * (1 - term_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}        (A_T = 0, done = term | trunc)

so the lambda-trace is cut at every episode end (terminated or truncated). `returns = A + values`
(the lambda-return, the critic's regression target). With lam = 1 and no truncation inside an
episode, A_t is the discounted Monte-Carlo return to the episode's end minus V(s_t).

`bootstrap_success=True` treats a success like a time limit: the TD error of a terminated step
also bootstraps from `next_values` (V of the real final observation); the trace is still cut there.
The seed's `RL/ppo_finetune.py` (the GAE PPO row of its Best Configurations) does exactly this: it
adds V(final_observation) for every env that ended, terminations included. The finetuning loop's
`gae` estimator follows the seed (engine/train/finetune.py); the ranking analysis and IQL-V+GAE keep
the textbook form (no value after a success), as the seed's ranking scripts and its IQL code do.

Pure tensor code: vectorised over N, a Python loop over T only. No autograd (inputs are detached).
"""
from __future__ import annotations

import torch

__all__ = ["gae"]


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
    *,
    bootstrap_success: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and lambda-returns for a [T, N] window (see the module docstring).

    Args:
        rewards, values, next_values: [T, N] float tensors.
        terminated, truncated: [T, N] bool (or 0/1) tensors.
        gamma: discount in (0, 1]; lam: GAE lambda in [0, 1].
        bootstrap_success: bootstrap from next_values at terminated steps too (the seed's PPO).
    Returns:
        (advantages, returns), both [T, N] with the dtype of `values`.
    """
    if rewards.dim() != 2:
        raise ValueError(f"gae expects [T, N] tensors, got rewards of shape {tuple(rewards.shape)}")
    shape = rewards.shape
    for name, t in (("values", values), ("next_values", next_values),
                    ("terminated", terminated), ("truncated", truncated)):
        if t.shape != shape:
            raise ValueError(f"gae: {name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    dtype = values.dtype if values.is_floating_point() else torch.float32
    rewards = rewards.detach().to(dtype)
    values = values.detach().to(dtype)
    next_values = next_values.detach().to(dtype)
    term = terminated.detach().to(torch.bool)
    done = term | truncated.detach().to(torch.bool)

    not_term = torch.ones_like(values) if bootstrap_success else (~term).to(dtype)
    not_done = (~done).to(dtype)
    # All one-step TD errors at once; only the trace needs the backward loop.
    deltas = rewards + gamma * not_term * next_values - values
    carry = gamma * lam * not_done

    T = shape[0]
    advantages = torch.empty_like(values)
    last = torch.zeros_like(values[0])
    for t in range(T - 1, -1, -1):
        last = deltas[t] + carry[t] * last
        advantages[t] = last
    return advantages, advantages + values
