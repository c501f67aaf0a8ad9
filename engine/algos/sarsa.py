"""SARSA: Q(s, a) and V(s) of the policy that collected the data, by MSE regression, and the
advantage Q - V (the seed repository's README, "Advantage Estimation Methods": SARSA =
"MSE regression (tau=0.5 IQL)"; its RL/sarsa_finetune.py regresses Q and V on Monte-Carlo
returns instead). Two targets, `sarsa_target`:

- `td` (the seed's definition, the default): IQL's critic fit at expectile tau = 0.5, where the
  expectile loss is half the MSE: V(s) regresses on Q(s, a) over the data's actions (their mean:
  V^beta) and Q on r + gamma (1 - term) V(s'): expected SARSA on the data, bootstrapped.
- `mc`: Q(s, a) and V(s) regressed on the discounted return-to-go of the data's trajectories
  (`engine.algos.td.discounted_returns`), no bootstrapping inside an episode.

Either way the result has `q_net(obs, actions)` and `v_net(obs)`; `sarsa_advantages(result,
obs, actions)` gives Q - V [M] (what the ranking analysis calls on the candidates of its states
after fitting on the transitions around them). The seed measured this Q-network's within-state
ranking at rho 0.010 (IQL Q-network at tau 0.5): the validator warns (KB08).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..nets import Critic, QNetwork
from .iql import fit_iql, seeded
from .supervised import fit_mse, predict

__all__ = ["SARSA_TAU", "SarsaResult", "fit_sarsa_td", "fit_sarsa_mc", "sarsa_advantages", "sarsa_values"]

SARSA_TAU = 0.5


@dataclass
class SarsaResult:
    q_net: Any                   # (obs, actions) -> Q [B]
    v_net: Any                   # obs -> V [B]
    stats: dict[str, Any] = field(default_factory=dict)


def fit_sarsa_td(obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
                 terminated: torch.Tensor, *, gamma: float, steps: int,
                 generator: torch.Generator | None = None) -> SarsaResult:
    """IQL at tau 0.5 on flat transitions (engine.algos.iql.fit_iql)."""
    r = fit_iql(obs, actions, rewards, next_obs, terminated, gamma=gamma, tau=SARSA_TAU, steps=steps,
                generator=generator)
    return SarsaResult(r.q_net, r.v_net, {**r.stats, "target": "td"})


def fit_sarsa_mc(obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, *, steps: int,
                 layers: int = 3, width: int = 256, generator: torch.Generator | None = None) -> SarsaResult:
    """Q(s, a) and V(s) (`layers` x `width` Tanh MLPs) fitted by MSE on the returns [M]."""
    with seeded(generator):
        q_net = QNetwork(obs.shape[1], actions.shape[1], layers, width).to(obs.device)
        v_net = Critic(obs.shape[1], layers, width).to(obs.device)
    q_loss = fit_mse(q_net, (obs, actions), returns, steps=steps, generator=generator)
    v_loss = fit_mse(v_net, (obs,), returns, steps=steps, generator=generator)
    return SarsaResult(q_net, v_net, {"q_loss": q_loss, "v_loss": v_loss, "target": "mc"})


@torch.no_grad()
def sarsa_values(result: SarsaResult, obs: torch.Tensor) -> torch.Tensor:
    return predict(result.v_net, obs)


@torch.no_grad()
def sarsa_advantages(result: SarsaResult, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q(s, a) - V(s), [M]."""
    return predict(result.q_net, obs, actions) - sarsa_values(result, obs)
