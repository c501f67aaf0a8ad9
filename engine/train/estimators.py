"""The finetuning loop's glue for the estimators added beyond the seed's matrix (issue 22): from a
[T, N] rollout to flat advantages, with the pure pieces in engine.algos (td, sarsa, two_stage,
rank_q). `Finetuner.advantages` calls `extra_advantages` for these estimators:

- `td`: n-step TD (`td_n`) along the rollout with the run's critic V (trained like GAE's).
- `sarsa`: Q - V of the data policy (`sarsa_target` td = IQL at tau 0.5, mc = regression on returns).
- `two-stage`: V on the returns, then a residual A network on returns - V.
- `rank-q`: a score network ranked within state neighbourhoods (pairs of near-identical states of
  other envs' trajectories), centred per state with the current policy's actions.

Returns for the regression-based ones are the discounted return-to-go of the rollout,
bootstrapped where an episode is truncated or the window ends with the loaded critic's V
(`critic_checkpoint`), or with 0 when there is none (the sparse reward's tail, gamma^k smaller).
"""
from __future__ import annotations

import time
from typing import Any

import torch

from ..algos.rank_q import fit_rank_q, neighbour_pairs, rank_q_advantages
from ..algos.sarsa import fit_sarsa_mc, fit_sarsa_td, sarsa_advantages
from ..algos.td import discounted_returns, td_advantages
from ..algos.two_stage import fit_two_stage, two_stage_advantages
from ..config.schema import RunConfig
from ..nets import Actor, Critic
from .rollout import Rollout, rollout_values

__all__ = ["EXTRA_ESTIMATORS", "extra_advantages"]

EXTRA_ESTIMATORS = ("td", "sarsa", "two-stage", "rank-q")
CENTER_SAMPLES = 8


def _returns(cfg: RunConfig, ro: Rollout, rewards: torch.Tensor, critic: Critic | None) -> torch.Tensor:
    nv = rollout_values(critic, ro)[1] if critic is not None else None
    return discounted_returns(rewards, ro.terminated, ro.truncated, cfg.gamma, next_values=nv)


def extra_advantages(cfg: RunConfig, ro: Rollout, rewards: torch.Tensor, *, critic: Critic | None, actor: Actor,
                     gen: torch.Generator, sample_gen: torch.Generator | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, dict[str, Any]]:
    """(advantages [M], returns [M] or None, values [M] or None, stats) for `cfg.estimator`."""
    flat = ro.flat
    stats: dict[str, Any] = {}
    if cfg.estimator == "td":
        v, nv = rollout_values(critic, ro)
        adv, ret = td_advantages(rewards, v, nv, ro.terminated, ro.truncated, cfg.gamma, cfg.td_n,
                                 bootstrap_success=True)  # episode ends as the GAE estimator treats them
        return flat(adv), flat(ret), flat(v), stats
    t0 = time.perf_counter()
    obs, act = flat(ro.obs), flat(ro.actions)
    ret = flat(_returns(cfg, ro, rewards, critic))
    layers, width = cfg.critic_layers, cfg.critic_width
    if cfg.estimator == "sarsa":
        if cfg.sarsa_target == "td":
            res = fit_sarsa_td(obs, act, flat(rewards), flat(ro.next_obs), flat(ro.terminated), gamma=cfg.gamma,
                               steps=cfg.fit_steps, generator=gen)
        else:
            res = fit_sarsa_mc(obs, act, ret, steps=cfg.fit_steps, layers=layers, width=width, generator=gen)
        adv = sarsa_advantages(res, obs, act)
    elif cfg.estimator == "two-stage":
        res = fit_two_stage(obs, act, ret, steps=cfg.fit_steps, layers=layers, width=width, generator=gen)
        adv = two_stage_advantages(res, obs, act)
    elif cfg.estimator == "rank-q":
        with torch.no_grad():
            target = ret - critic(obs) if critic is not None else ret
        env_of = torch.arange(obs.shape[0], device=obs.device) % ro.num_envs   # flat order is t-major
        pairs = neighbour_pairs(obs, cfg.rank_neighbours, exclude=env_of)
        res = fit_rank_q(obs, act, target, pairs, steps=cfg.fit_steps, layers=layers, width=width, generator=gen)

        def policy(o: torch.Tensor) -> torch.Tensor:
            return actor.act(o, deterministic=False, generator=sample_gen)

        adv = rank_q_advantages(res, obs, act, policy=policy, center_samples=CENTER_SAMPLES)
    else:
        raise ValueError(f"extra_advantages: unknown estimator {cfg.estimator!r}")
    stats.update({f"fit_{k}": v for k, v in res.stats.items() if isinstance(v, (int, float))})
    stats["fit_s"] = round(time.perf_counter() - t0, 2)
    return adv, ret, None, stats
