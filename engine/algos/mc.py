"""The MC-k advantage estimator: Monte-Carlo re-rollouts from snapshots of visited states.

For each of M visited pairs (s_i, a_i) (their env snapshots in `states`):

    Q(s_i, a_i) = mean over k branches of  sum_t gamma^t r_t,  branch takes a_i first, then `policy`
    V(s_i)      = mean over k branches of  sum_t gamma^t r_t,  branch follows `policy` from s_i
    A(s_i, a_i) = Q - V

with the environment's sparse reward (1 on the success step, which also terminates the episode).

Batching: all 2k branches of all M states are ONE flat batch of B = M * 2k cloned snapshots,
laid out state-major (state i owns branches [i*2k, (i+1)*2k): first k are Q branches, last k are V
branches). The batch is cut into chunks of at most `max_batch` envs only to bound memory; each
chunk is one `rollout_env.restore(states.select(idx))` and one batched step loop. There is no
Python loop over states. Rollout envs are obtained from `make_rollout_env(n)` and cached by size
(full chunks share one env; the last, smaller chunk gets a second one). Pass a `RolloutEnvCache`
as `make_rollout_env` to keep them across calls (the training loop calls this every iteration).

Time budget (`full_budget`): by default every branch gets a full episode of `max_episode_steps`
steps from the restored state and ends only on `terminated` (success), as the seed does (it sets
the restored env's elapsed-step counter to 0). With `full_budget=False` a branch also ends when the
env reports `truncated` (its elapsed-step count, carried by the snapshot, reached
`max_episode_steps`), so a state visited near the time limit only gets the steps its episode had
left and late states get advantages of exactly zero. Stepped-but-ended branches are masked out of
the return and get no policy forward pass (the env still simulates them, since a batched env
cannot shrink).

Horizon cut (`horizon_tol`): the loop stops before step t once gamma^t < horizon_tol, i.e. it
simulates H = min{t : gamma^t < tol} steps. The omitted tail sum_{t >= H} gamma^t r_t is at most
gamma^H / (1 - gamma) < horizon_tol / (1 - gamma) in return units for any reward in [0, 1]; with
the sparse terminating reward (at most one reward of 1 per episode) it is even < horizon_tol.
With gamma = 0.8 and tol = 1e-4: gamma^41 = 1.06e-4, gamma^42 = 8.5e-5, so steps t >= 42 are
dropped (H = 42) and the bias is < 5e-4 (< 1e-4 for sparse rewards). tol = 0 disables the cut.
The loop also stops as soon as every branch of the chunk has ended.

Accounting: `env_steps` counts one step per LIVE branch per simulated step (the honest cost of
the estimate); `env_steps_simulated` counts chunk size x steps run (what the batched simulator
actually executed, ended branches included).

`compute_v=False` (mc_baseline = critic) runs only the k Q branches per state; `v` and
`advantages` are then None and the caller subtracts its critic's V(s).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from ..nets import sliced

from ..envs.base import BatchedEnv, EnvState
from ..runtime import tick

__all__ = ["MCResult", "RolloutEnvCache", "mc_estimate", "mc_horizon"]

Policy = Callable[..., torch.Tensor]


@dataclass
class MCResult:
    q: torch.Tensor                    # [M] mean discounted return of the k Q branches
    v: torch.Tensor | None             # [M] mean of the k V branches (None when compute_v=False)
    advantages: torch.Tensor | None    # [M] q - v (None when compute_v=False)
    env_steps: int                     # env steps of live branches (the honest cost)
    env_steps_simulated: int = 0       # chunk size x steps, ended branches included
    q_std: torch.Tensor | None = None  # [M] std over the k Q returns (0 when k = 1)
    v_std: torch.Tensor | None = None  # [M] std over the k V returns
    horizon: int | None = None         # steps kept by the horizon_tol cut (None = no cut)
    max_steps_run: int = 0             # longest step loop over the chunks
    chunks: int = 0                    # number of restore calls


class RolloutEnvCache:
    """`make_rollout_env` wrapper that builds one env per size and reuses it.

    `factory(n)` must build a `BatchedEnv` of n envs with autoreset=False and sparse reward.
    Call `close()` when done (closes every cached env).
    """

    def __init__(self, factory: Callable[[int], BatchedEnv]):
        self.factory = factory
        self.envs: dict[int, BatchedEnv] = {}

    def __call__(self, n: int) -> BatchedEnv:
        env = self.envs.get(n)
        if env is None:
            env = self.factory(n)
            if env.num_envs != n:
                raise ValueError(f"rollout env factory built {env.num_envs} envs, asked for {n}")
            self.envs[n] = env
        return env

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def mc_horizon(gamma: float, horizon_tol: float) -> int | None:
    """H = min{t : gamma^t < horizon_tol}: the number of steps a branch simulates at most
    (None = no cut: tol <= 0 or gamma >= 1)."""
    if horizon_tol <= 0 or gamma >= 1:
        return None
    if horizon_tol > 1:
        return 0
    t, d = 0, 1.0
    while d >= horizon_tol:
        t += 1
        d *= gamma
    return t


def _policy_caller(policy: Policy, generator: torch.Generator | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """`policy(obs)`, passing `generator=` as well when the callable accepts it."""
    if generator is None:
        return policy
    try:
        params = inspect.signature(policy).parameters
    except (TypeError, ValueError):
        return policy
    if "generator" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return lambda o: policy(o, generator=generator)
    return policy


@torch.no_grad()
def mc_estimate(
    make_rollout_env: Callable[[int], BatchedEnv],
    states: EnvState,
    obs: torch.Tensor,
    actions: torch.Tensor,
    policy: Policy,
    *,
    k: int,
    gamma: float,
    horizon_tol: float,
    max_batch: int,
    generator: torch.Generator | None = None,
    compute_v: bool = True,
    full_budget: bool = True,
) -> MCResult:
    """MC-k estimates of Q(s, a), V(s) and A = Q - V for M visited pairs (see the module docstring).

    Args:
        make_rollout_env: n -> BatchedEnv of n envs (autoreset=False, sparse reward); wrapped in
            a per-call `RolloutEnvCache` unless it already is one.
        states: snapshots of the M visited states (len(states) == M).
        obs: [M, obs_dim] their observations (only checked for size: the branches act on the
            observation `restore` returns, which is the same state).
        actions: [M, act_dim] the actions taken there (first action of the Q branches).
        policy: obs [n, obs_dim] -> actions [n, act_dim]; samples unless the caller passes a
            deterministic one. Receives `generator=` too when its signature accepts it.
        k: branches per estimate (MC-k); gamma: discount; horizon_tol: see the cut above.
        max_batch: most envs simulated at once (memory bound only).
        compute_v: False = only Q branches (critic baseline).
        full_budget: True = each branch runs up to max_episode_steps from the restored state (the
            seed's reset of the elapsed-step counter); False = it also ends when the env truncates.
    """
    M = len(states)
    _check_inputs(M, obs, actions, k, max_batch)
    H = mc_horizon(gamma, horizon_tol)
    if M == 0:
        return _empty_result(obs.device, compute_v, H)
    get_env = make_rollout_env if isinstance(make_rollout_env, RolloutEnvCache) else RolloutEnvCache(make_rollout_env)
    call = _policy_caller(policy, generator)

    def act(o: torch.Tensor) -> torch.Tensor:  # 4k-row slices: ~2.3x the states/s of one huge call
        return sliced(call, o)

    per_state = 2 * k if compute_v else k
    B = M * per_state
    # the branch layout and the returns live on the CPU (chunks are cut from them and sent to the
    # rollout env's device); the results go back to the device of `obs`
    cpu = torch.device("cpu")
    branch_state = torch.arange(M, device=cpu).repeat_interleave(per_state)   # [B] visited-state index
    branch_is_q = (torch.arange(B, device=cpu) % per_state) < k               # [B] first k of each group
    returns = torch.zeros(B, dtype=torch.float32, device=cpu)
    totals = _Totals()
    for start in range(0, B, max_batch):
        end = min(B, start + max_batch)
        env = get_env(end - start)
        idx = branch_state[start:end].to(env.device)
        o = env.restore(states.select(idx))
        a = _first_actions(env, o, actions, idx, branch_is_q[start:end].to(env.device), act)
        returns[start:end] = _run_branches(env, a, act, gamma, H, full_budget, totals).cpu()
    return _result(returns.view(M, per_state), k, compute_v, obs.device, H, totals)


def _check_inputs(M: int, obs: torch.Tensor, actions: torch.Tensor, k: int, max_batch: int) -> None:
    if obs.shape[0] != M or actions.shape[0] != M:
        raise ValueError(f"mc_estimate: {M} states but obs {tuple(obs.shape)} and actions {tuple(actions.shape)}")
    if k < 1:
        raise ValueError(f"mc_estimate: k must be >= 1, got {k}")
    if max_batch < 1:
        raise ValueError(f"mc_estimate: max_batch must be >= 1, got {max_batch}")


def _empty_result(device: torch.device, compute_v: bool, H: int | None) -> MCResult:
    empty = torch.zeros(0, device=device)
    return MCResult(q=empty, v=empty if compute_v else None, advantages=empty if compute_v else None,
                    env_steps=0, env_steps_simulated=0, q_std=empty, v_std=empty if compute_v else None, horizon=H)


@dataclass
class _Totals:
    """Accounting over the chunks (module docstring)."""
    env_steps: int = 0
    simulated: int = 0
    max_steps_run: int = 0
    chunks: int = 0


def _first_actions(env: BatchedEnv, o: torch.Tensor, actions: torch.Tensor, idx: torch.Tensor,
                   is_q: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Step 0 of a chunk: Q branches take the visited action, V branches ask the policy."""
    dev = env.device
    a = torch.empty((idx.shape[0], env.act_dim), dtype=torch.float32, device=dev)
    a[is_q] = actions.to(dev, torch.float32)[idx[is_q]]
    is_v = ~is_q
    if bool(is_v.any()):
        a[is_v] = act(o[is_v]).to(dev, torch.float32)
    return a


def _run_branches(env: BatchedEnv, a: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], gamma: float,
                  H: int | None, full_budget: bool, totals: _Totals) -> torch.Tensor:
    """Step one restored chunk from its first actions `a` until every branch ended or the step
    limit; returns each branch's discounted return [n] (on the env's device)."""
    n, dev = a.shape[0], env.device
    totals.chunks += 1
    live = torch.ones(n, dtype=torch.bool, device=dev)
    n_live = n  # live branches before this step: one read of the GPU per step, which the early stop needs anyway
    g = torch.zeros(n, dtype=torch.float32, device=dev)
    disc = 1.0
    t = 0
    limit = env.max_episode_steps if H is None else min(H, env.max_episode_steps)
    while t < limit:
        tick()
        res = env.step(a)
        totals.env_steps += n_live
        totals.simulated += n
        g += disc * res.reward.to(torch.float32) * live
        live &= ~(res.terminated if full_budget else (res.terminated | res.truncated))
        t += 1
        disc *= gamma
        n_live = int(live.sum())
        if t >= limit or n_live == 0:
            break
        a = torch.zeros((n, env.act_dim), dtype=torch.float32, device=dev)
        a[live] = act(res.obs[live]).to(dev, torch.float32)
    totals.max_steps_run = max(totals.max_steps_run, t)
    return g


def _result(G: torch.Tensor, k: int, compute_v: bool, out_device: torch.device, H: int | None,
            totals: _Totals) -> MCResult:
    """Means and stds over the k Q (and V) branches of each state, G [M, per_state] on the CPU."""
    M, cpu = G.shape[0], G.device
    q_samples = G[:, :k]
    q = q_samples.mean(1)
    q_std = q_samples.std(1) if k > 1 else torch.zeros(M, device=cpu)
    v = v_std = adv = None
    if compute_v:
        v_samples = G[:, k:]
        v = v_samples.mean(1)
        v_std = v_samples.std(1) if k > 1 else torch.zeros(M, device=cpu)
        adv = q - v
    to = (lambda x: None if x is None else x.to(out_device))
    return MCResult(q=to(q), v=to(v), advantages=to(adv), env_steps=totals.env_steps,
                    env_steps_simulated=totals.simulated, q_std=to(q_std), v_std=to(v_std), horizon=H,
                    max_steps_run=totals.max_steps_run, chunks=totals.chunks)
