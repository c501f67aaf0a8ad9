"""Advantage-weighted regression (Peng et al. 2019) as the policy update.

The policy is fitted by weighted maximum likelihood on the batch's own actions. The seed's form
(`RL/mc_finetune_awr_parallel.py`, `norm_adv = True` by default, left on in every logged AWR run):

    z_i = (A_i - mean(A)) / (std(A) + 1e-8)        standardised over the WHOLE batch, once
    w_i = min(exp(z_i / beta), max_weight)           fixed for all gradient steps of the call
    per minibatch m:  w_i <- w_i * |m| / sum_{j in m} w_j     (mean 1 within the minibatch)
    loss_m = -mean_{i in m}( w_i * log pi(a_i | s_i) )

`normalize = False` uses the raw advantages (exp(A / beta)); `rescale = False` drops the
per-minibatch mean-1 rescaling. Both False is the plain AWR-paper form without standardisation
(the raw form: with an advantage std of ~0.08 and beta 0.5 its weights are 1 +- 0.2, close to
self-cloning). Because the weights are fixed per call, AWR (unlike PPO) needs no old log-probs and
tolerates many epochs (the seed's finding 2).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .loops import minibatch_epochs

__all__ = ["awr_weights", "awr_update", "minibatch_rescale", "effective_sample_size"]


def _exponent(adv: torch.Tensor, beta: float, normalize: bool) -> torch.Tensor:
    """z / beta, with z the batch-standardised advantage when `normalize` (else the raw one)."""
    a = adv.detach().float()
    if normalize and a.numel() > 1:
        a = (a - a.mean()) / (a.std() + 1e-8)
    return a / beta


@torch.no_grad()
def awr_weights(adv: torch.Tensor, beta: float, max_weight: float, normalize: bool = True) -> torch.Tensor:
    """exp(A / beta) clipped at `max_weight` (A standardised over the batch first when `normalize`).

    Computed as exp(min(A / beta, log(max_weight))), so large advantages never overflow to inf.
    """
    if beta <= 0:
        raise ValueError(f"awr beta must be > 0, got {beta}")
    z = _exponent(adv, beta, normalize)
    if max_weight is not None and math.isfinite(max_weight):
        z = torch.clamp(z, max=math.log(max_weight))
    return z.exp()


@torch.no_grad()
def effective_sample_size(w: torch.Tensor) -> float:
    """Kish's effective sample size of weights: (sum w)^2 / sum w^2. It is the batch size for equal
    weights and 1 when one sample carries all the weight (the run doctor reads it as a fraction)."""
    w = w.detach().double()
    sq = float((w * w).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def minibatch_rescale(w: torch.Tensor) -> torch.Tensor:
    """The minibatch's weights rescaled to mean 1 (w * n / sum(w)), as the seed does per minibatch."""
    return w * (w.numel() / w.sum())


def awr_update(
    actor: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    *,
    beta: float,
    max_weight: float,
    normalize: bool = True,
    rescale: bool = True,
    update_epochs: int,
    num_minibatches: int,
    max_grad_norm: float | None,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Weighted negative log-likelihood steps on (obs, actions) with AWR weights (module docstring).

    `actor` provides `log_prob(obs, actions) -> [B]` (engine.nets.Actor). Returns stats: loss
    (mean over the gradient steps), weight_mean, weight_max (batch weights before the per-minibatch
    rescale), frac_clipped (weights at max_weight), weight_ess (Kish's effective sample size of the
    batch weights) and weight_ess_frac (that over the batch size: 1 = uniform weights, plain
    cloning; near 0 = a few samples carry the update), frac_pos_adv (raw advantages > 0), adv_mean,
    adv_std, grad_steps.
    """
    B = obs.shape[0]
    if B == 0:
        raise ValueError("awr_update: empty batch")
    adv = advantages.detach()
    weights = awr_weights(adv, beta, max_weight, normalize).to(obs.device)
    with torch.no_grad():
        if max_weight is not None and math.isfinite(max_weight):
            frac_clipped = (_exponent(adv, beta, normalize) >= math.log(max_weight)).float().mean().item()
        else:
            frac_clipped = 0.0

    ess = effective_sample_size(weights)

    def minibatch_loss(mb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = minibatch_rescale(weights[mb]) if rescale else weights[mb]
        loss = -(w * actor.log_prob(obs[mb], actions[mb])).mean()
        return loss, {"loss": loss}

    run = minibatch_epochs(optimizer, B, minibatch_loss, update_epochs=update_epochs,
                           num_minibatches=num_minibatches, max_grad_norm=max_grad_norm, generator=generator,
                           device=obs.device)
    return {
        "loss": run.mean("loss"),
        "weight_mean": weights.mean().item(),
        "weight_max": weights.max().item(),
        "frac_clipped": frac_clipped,
        "weight_ess": ess,
        "weight_ess_frac": ess / B,
        "frac_pos_adv": (adv > 0).float().mean().item(),
        "adv_mean": adv.float().mean().item(),
        "adv_std": adv.float().std().item() if adv.numel() > 1 else 0.0,
        "grad_steps": run.grad_steps,
    }
