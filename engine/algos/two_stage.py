"""Two-stage advantage fitting, the seed repository's second open direction (README, "Experiment
Plan", Phase 2: "first learn V(s), then learn residual A(s,a) = Q - V"): V(s) is fitted by MSE on
the returns first, then a separate network A(s, a) by MSE on the residual targets
returns - V(s), so the action network never has to carry the state's value (the cross-state
variance that drowns a Q-network's within-state signal, ~500x in the seed's measurement).

The seed found plain regression of advantage targets through a network ranks poorly (NN(A_MC):
rho 0.040); whether fitting the residual after V does better is the open question this
estimator lets one measure. `two_stage_advantages(result, obs, actions)` is A(s, a) [M] (the
ranking analysis: fit on (obs, actions, returns) of trajectories, then call it on the candidates).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..nets import Critic, QNetwork
from .iql import seeded
from .supervised import fit_mse, predict

__all__ = ["TwoStageResult", "fit_two_stage", "two_stage_advantages"]


@dataclass
class TwoStageResult:
    v_net: Critic
    a_net: QNetwork              # (obs, actions) -> A
    stats: dict[str, Any] = field(default_factory=dict)


def fit_two_stage(obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, *, steps: int,
                  layers: int = 3, width: int = 256, generator: torch.Generator | None = None) -> TwoStageResult:
    """Stage 1: V on `returns` ([M]) for `steps` steps; stage 2: A on returns - V(s) for `steps` steps."""
    with seeded(generator):
        v_net = Critic(obs.shape[1], layers, width).to(obs.device)
        a_net = QNetwork(obs.shape[1], actions.shape[1], layers, width).to(obs.device)
    v_loss = fit_mse(v_net, (obs,), returns, steps=steps, generator=generator)
    residual = returns.detach().float().view(-1) - predict(v_net, obs)
    a_loss = fit_mse(a_net, (obs, actions), residual, steps=steps, generator=generator)
    return TwoStageResult(v_net, a_net, {"v_loss": v_loss, "a_loss": a_loss,
                                         "residual_std": float(residual.std()) if residual.numel() > 1 else 0.0})


@torch.no_grad()
def two_stage_advantages(result: TwoStageResult, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """A(s, a) of the residual network, [M]."""
    return predict(result.a_net, obs, actions)
