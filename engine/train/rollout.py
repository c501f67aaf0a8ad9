"""Collecting experience: run a policy in a batched env for T steps into [T, N] tensors.

`collect` is shared by pretraining, online finetuning and offline dataset collection. It keeps
the real next observation of every step (`final_obs`, so that GAE can bootstrap at
truncation) and, when asked, a snapshot of the env state before every step (for MC
re-rollouts from the visited states).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..envs import BatchedEnv, EnvState
from ..nets import Actor, Critic, sliced


@dataclass
class Rollout:
    obs: torch.Tensor          # [T, N, obs_dim] observation the action was taken in
    actions: torch.Tensor      # [T, N, act_dim] action sent to the env (unclipped sample)
    logprobs: torch.Tensor     # [T, N]
    rewards: torch.Tensor      # [T, N] env reward (sparse or dense, as the env was built)
    terminated: torch.Tensor   # [T, N] bool
    truncated: torch.Tensor    # [T, N] bool
    success: torch.Tensor      # [T, N] bool
    next_obs: torch.Tensor     # [T, N, obs_dim] real next state (final_obs)
    states: list[EnvState] = field(default_factory=list)  # T snapshots of N envs (when kept)

    @property
    def num_steps(self) -> int:
        return self.obs.shape[0]

    @property
    def num_envs(self) -> int:
        return self.obs.shape[1]

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, *x.shape[2:])

    def all_states(self) -> EnvState:
        """Snapshots in the same (t-major) order as `flat(obs)`."""
        return type(self.states[0]).cat(self.states)

    def episode_stats(self) -> dict[str, float]:
        done = (self.terminated | self.truncated)
        n = int(done.sum())
        return {"train_episodes": n, "train_success_rate": float(self.terminated.sum()) / n if n else float("nan")}


@torch.no_grad()
def collect(env: BatchedEnv, actor: Actor, obs: torch.Tensor, num_steps: int, *,
            generator: torch.Generator | None = None, keep_states: bool = False,
            deterministic: bool = False) -> tuple[Rollout, torch.Tensor]:
    """Run `actor` for `num_steps` from `obs`; returns the rollout and the obs to continue from."""
    T, N = num_steps, env.num_envs
    dev = obs.device
    b_obs = torch.empty(T, N, env.obs_dim, device=dev)
    b_next = torch.empty(T, N, env.obs_dim, device=dev)
    b_act = torch.empty(T, N, env.act_dim, device=dev)
    b_logp = torch.empty(T, N, device=dev)
    b_rew = torch.empty(T, N, device=dev)
    b_term = torch.empty(T, N, dtype=torch.bool, device=dev)
    b_trunc = torch.empty(T, N, dtype=torch.bool, device=dev)
    b_succ = torch.empty(T, N, dtype=torch.bool, device=dev)
    states: list[EnvState] = []
    for t in range(T):
        if keep_states:
            states.append(env.snapshot())
        b_obs[t] = obs
        if deterministic:
            action = actor.act(obs, deterministic=True)
            logp = actor.log_prob(obs, action)
        else:
            action, logp = actor.act_with_logprob(obs, generator=generator)
        res = env.step(action)
        b_act[t], b_logp[t] = action, logp
        b_rew[t], b_term[t], b_trunc[t], b_succ[t] = res.reward, res.terminated, res.truncated, res.success
        b_next[t] = res.final_obs
        obs = res.obs
    return Rollout(b_obs, b_act, b_logp, b_rew, b_term, b_trunc, b_succ, b_next, states), obs


@torch.no_grad()
def rollout_values(critic: Critic, ro: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    """V(obs) and V(real next obs), [T, N] each. next_obs[t] is obs[t+1] wherever the episode
    went on, so the critic only sees the final obs of ended steps and of the window's last step
    (measured: 49 vs 135 CPU-ms at 512 x 50)."""
    flat = lambda x: sliced(critic, x.reshape(-1, x.shape[-1])).view(x.shape[:-1])
    v = flat(ro.obs)
    nv = torch.empty_like(v)
    nv[:-1] = v[1:]
    fresh = ro.terminated | ro.truncated
    fresh[-1] = True
    nv[fresh] = sliced(critic, ro.next_obs[fresh])
    return v, nv
