"""Advantage-weighted regression (Peng et al. 2019) as the policy update.

The policy is fitted by weighted maximum likelihood on the batch's own actions:

    loss = -mean_i( w_i * log pi(a_i | s_i) ),   w_i = min(exp(A_i / beta), max_weight)

with A optionally standardised over the whole batch first (`normalize`, as the AWR paper does;
the seed's runs use raw advantages with beta = 0.5). The weights are computed once per call from
the whole batch and stay fixed over the `update_epochs` x `num_minibatches` gradient steps, so
AWR (unlike PPO) needs no old log-probs and tolerates many epochs (the seed's finding 2).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .ppo import minibatch_indices

__all__ = ["awr_weights", "awr_update"]


@torch.no_grad()
def awr_weights(adv: torch.Tensor, beta: float, max_weight: float, normalize: bool) -> torch.Tensor:
    """exp(A / beta) clipped at `max_weight` (A standardised first when `normalize`).

    Computed as exp(min(A / beta, log(max_weight))), so large advantages never overflow to inf.
    """
    if beta <= 0:
        raise ValueError(f"awr beta must be > 0, got {beta}")
    a = adv.detach().float()
    if normalize and a.numel() > 1:
        a = (a - a.mean()) / (a.std() + 1e-8)
    z = a / beta
    if max_weight is not None and math.isfinite(max_weight):
        z = torch.clamp(z, max=math.log(max_weight))
    return z.exp()


def awr_update(
    actor: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    *,
    beta: float,
    max_weight: float,
    normalize: bool,
    update_epochs: int,
    num_minibatches: int,
    max_grad_norm: float | None,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Weighted negative log-likelihood steps on (obs, actions) with AWR weights.

    `actor` provides `log_prob(obs, actions) -> [B]` (engine.nets.Actor). Returns stats: loss
    (mean over the gradient steps), weight_mean, weight_max, frac_clipped (weights at
    max_weight), frac_pos_adv (raw advantages > 0), adv_mean, adv_std, grad_steps.
    """
    B = obs.shape[0]
    if B == 0:
        raise ValueError("awr_update: empty batch")
    adv = advantages.detach()
    weights = awr_weights(adv, beta, max_weight, normalize).to(obs.device)
    with torch.no_grad():
        if max_weight is not None and math.isfinite(max_weight):
            a = adv.float()
            if normalize and a.numel() > 1:
                a = (a - a.mean()) / (a.std() + 1e-8)
            frac_clipped = (a / beta >= math.log(max_weight)).float().mean().item()
        else:
            frac_clipped = 0.0

    params = [p for g in optimizer.param_groups for p in g["params"]]
    losses: list[float] = []
    for _ in range(update_epochs):
        for mb in minibatch_indices(B, num_minibatches, generator, device=obs.device):
            logp = actor.log_prob(obs[mb], actions[mb])
            loss = -(weights[mb] * logp).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None and max_grad_norm > 0:
                nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_grad_norm)
            optimizer.step()
            losses.append(loss.item())

    return {
        "loss": float(sum(losses) / len(losses)) if losses else 0.0,
        "weight_mean": weights.mean().item(),
        "weight_max": weights.max().item(),
        "frac_clipped": frac_clipped,
        "frac_pos_adv": (adv > 0).float().mean().item(),
        "adv_mean": adv.float().mean().item(),
        "adv_std": adv.float().std().item() if adv.numel() > 1 else 0.0,
        "grad_steps": len(losses),
    }
