"""RECAP-style AWR as the policy update (`update = "recap"`): AWR for the good actions and
reverse behaviour cloning that pushes the bad ones away, as the seed repository describes it
(README, "Policy Update Rules": positive advantage -> `exp(A/beta)` weighted BC, negative ->
`exp(|A|/beta)` reverse BC; RL/mc_finetune_awr_recap.py, `--recap_alpha`, 0 = pure AWR on the
positives). With z the advantage (standardised over the whole batch when `normalize`, the seed's
norm_adv default):

    positives P = {z > 0}:  w+ = min(exp(z / beta), max_weight)
    negatives N = {z <= 0}: w- = min(exp(|z| / beta), max_weight)
    per minibatch m, each side's weights rescaled to mean 1 within that side of m, and
    loss_m = -mean_{i in m & P}(w+_i log pi(a_i|s_i)) + alpha * mean_{i in m & N}(w-_i log pi(a_i|s_i))

A side that is empty in a minibatch contributes 0. Unlike AWR, the negative term is unbounded
below (log pi of an action can be pushed to -inf), so `max_grad_norm` and small alphas matter;
the seed's default alpha is 1.0.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .awr import _exponent
from .loops import minibatch_epochs

__all__ = ["recap_weights", "recap_update"]


@torch.no_grad()
def recap_weights(adv: torch.Tensor, beta: float, max_weight: float,
                  normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive mask, weights): exp(|z| / beta) clipped at `max_weight` for both sides (the
    positives' z is |z|), computed as exp(min(., log max_weight)) so nothing overflows."""
    if beta <= 0:
        raise ValueError(f"recap beta must be > 0, got {beta}")
    z = _exponent(adv, beta, normalize)          # z / beta
    pos = z > 0
    e = z.abs()
    if max_weight is not None and math.isfinite(max_weight):
        e = torch.clamp(e, max=math.log(max_weight))
    return pos, e.exp()


def _side_mean(w: torch.Tensor, logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over the masked entries of (w rescaled to mean 1 there) * logp; 0 when none."""
    n = int(mask.sum())
    if n == 0:
        return logp.sum() * 0.0
    ws = w[mask]
    return (ws * (n / ws.sum()) * logp[mask]).mean()


def recap_update(actor: nn.Module, optimizer: torch.optim.Optimizer, obs: torch.Tensor, actions: torch.Tensor,
                 advantages: torch.Tensor, *, beta: float, max_weight: float, alpha: float,
                 normalize: bool = True, update_epochs: int, num_minibatches: int,
                 max_grad_norm: float | None, generator: torch.Generator | None = None) -> dict[str, Any]:
    """RECAP steps (module docstring). Returns stats: loss, pos_loss, neg_loss (means over the
    gradient steps), pos_ratio, pos_weight_mean, neg_weight_mean, adv_mean, adv_std, grad_steps."""
    B = obs.shape[0]
    if B == 0:
        raise ValueError("recap_update: empty batch")
    adv = advantages.detach()
    pos, w = recap_weights(adv, beta, max_weight, normalize)
    pos, w = pos.to(obs.device), w.to(obs.device)

    def minibatch_loss(mb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logp = actor.log_prob(obs[mb], actions[mb])
        p_loss = -_side_mean(w[mb], logp, pos[mb])
        n_loss = _side_mean(w[mb], logp, ~pos[mb])
        loss = p_loss + alpha * n_loss
        return loss, {"loss": loss, "pos_loss": p_loss, "neg_loss": n_loss}

    run = minibatch_epochs(optimizer, B, minibatch_loss, update_epochs=update_epochs,
                           num_minibatches=num_minibatches, max_grad_norm=max_grad_norm, generator=generator,
                           device=obs.device)
    mean = lambda key: float(torch.stack(run.logs[key]).mean()) if run.logs.get(key) else 0.0  # noqa: E731
    return {
        "loss": mean("loss"), "pos_loss": mean("pos_loss"), "neg_loss": mean("neg_loss"),
        "pos_ratio": pos.float().mean().item(),
        "pos_weight_mean": w[pos].mean().item() if bool(pos.any()) else 0.0,
        "neg_weight_mean": w[~pos].mean().item() if bool((~pos).any()) else 0.0,
        "adv_mean": adv.float().mean().item(),
        "adv_std": adv.float().std().item() if adv.numel() > 1 else 0.0,
        "grad_steps": run.grad_steps,
    }
