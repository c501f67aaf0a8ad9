"""The PPO clipped-surrogate update (Schulman et al. 2017), as in CleanRL's ppo_continuous_action
and ManiSkill's PPO baseline, over one flat batch of collected data.

`ppo_update` runs `update_epochs` passes over the batch, each split into `num_minibatches`
random minibatches. Per minibatch:

    ratio    = exp(log pi(a|s) - logprob_old)
    pg_loss  = mean(max(-A * ratio, -A * clip(ratio, 1 - clip_coef, 1 + clip_coef)))
    v_loss   = 0.5 * mean((V(s) - returns)^2)          (optionally the clipped variant)
    loss     = pg_loss - ent_coef * entropy + vf_coef * v_loss

with A standardised per minibatch when `norm_adv`, gradients clipped to `max_grad_norm` (one
global norm over every parameter the optimizer holds) and one optimizer step.

Early stop (CleanRL's rule): after each epoch, if the approximate KL of the last minibatch
(k3 estimator: mean((ratio - 1) - log ratio)) exceeds `target_kl`, the remaining epochs are
skipped (`stopped_early` = True). `target_kl` of None (or the config's 100 = off) never stops.

Variants the training loop needs:
- `critic=None`: no value loss (advantages come from elsewhere, e.g. MC-k). `v_loss` reports 0.
- `train_policy=False`: critic warm-up; only `vf_coef * v_loss` is backpropagated, the actor's
  parameters receive no gradient and do not move (their Adam state is untouched too).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .indices import minibatch_indices
from .loops import EpochsRun, minibatch_epochs

__all__ = ["ppo_update", "minibatch_indices"]


@dataclass(frozen=True)
class _MinibatchLoss:
    """PPO's loss on one minibatch (module docstring) and the statistics it logs."""
    actor: nn.Module
    critic: nn.Module | None
    obs: torch.Tensor
    actions: torch.Tensor
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor | None
    old_values: torch.Tensor | None
    clip_coef: float
    ent_coef: float
    vf_coef: float
    norm_adv: bool
    train_policy: bool
    clip_vloss: bool

    def __call__(self, mb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mb_obs = self.obs[mb]
        # the warm-up (train_policy False) reads the policy without building its graph
        with contextlib.nullcontext() if self.train_policy else torch.no_grad():
            dist = self.actor.dist(mb_obs)
            newlogprob = dist.log_prob(self.actions[mb]).sum(-1)
            entropy = dist.entropy().sum(-1).mean()
        logratio = newlogprob - self.old_logprobs[mb]
        ratio = logratio.exp()
        with torch.no_grad():
            stats = {"old_approx_kl": (-logratio).mean(), "approx_kl": ((ratio - 1) - logratio).mean(),
                     "clipfrac": ((ratio - 1.0).abs() > self.clip_coef).float().mean()}
        pg_loss = self._pg_loss(ratio, self.advantages[mb])
        v_loss = self._v_loss(mb_obs, mb)
        if self.train_policy:
            loss = pg_loss - self.ent_coef * entropy + self.vf_coef * v_loss
        else:
            loss = self.vf_coef * v_loss
        stats.update(pg_loss=pg_loss, v_loss=v_loss, entropy=entropy)
        return loss, stats

    def _pg_loss(self, ratio: torch.Tensor, mb_adv: torch.Tensor) -> torch.Tensor:
        if self.norm_adv and mb_adv.numel() > 1:
            mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
        pg_loss1 = -mb_adv * ratio
        pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - self.clip_coef, 1 + self.clip_coef)
        return torch.max(pg_loss1, pg_loss2).mean()

    def _v_loss(self, mb_obs: torch.Tensor, mb: torch.Tensor) -> torch.Tensor:
        if self.critic is None:
            return torch.zeros((), device=self.obs.device)
        newvalue = self.critic(mb_obs).view(-1)
        returns = self.returns[mb]
        if not self.clip_vloss:
            return 0.5 * ((newvalue - returns) ** 2).mean()
        old = self.old_values[mb]
        v_clipped = old + torch.clamp(newvalue - old, -self.clip_coef, self.clip_coef)
        return 0.5 * torch.max((newvalue - returns) ** 2, (v_clipped - returns) ** 2).mean()


def _explained_variance(batch: dict[str, torch.Tensor], use_critic: bool) -> float:
    """1 - Var(returns - values) / Var(returns) of the batch (CleanRL's log); nan without a critic,
    without values or with constant returns."""
    if not use_critic or batch.get("values") is None:
        return float("nan")
    y_pred, y_true = batch["values"].detach().float(), batch["returns"].detach().float()
    var_y = y_true.var(unbiased=False)
    return (1 - (y_true - y_pred).var(unbiased=False) / var_y).item() if var_y.item() > 0 else float("nan")


def _loss_of(actor: nn.Module, critic: nn.Module | None, batch: dict[str, torch.Tensor], clip_vloss: bool,
             **coefs: Any) -> _MinibatchLoss:
    """The minibatch loss over `batch`, its inputs checked and detached."""
    if batch["obs"].shape[0] == 0:
        raise ValueError("ppo_update: empty batch")
    returns = old_values = None
    if critic is not None:
        returns = batch["returns"].detach()
        old_values = batch.get("values")
        old_values = old_values.detach() if old_values is not None else None
        if clip_vloss and old_values is None:
            raise ValueError("ppo_update: clip_vloss needs batch['values']")
    return _MinibatchLoss(actor, critic, batch["obs"], batch["actions"], batch["logprobs"].detach(),
                          batch["advantages"].detach(), returns, old_values, clip_vloss=clip_vloss, **coefs)


def ppo_update(
    actor: nn.Module,
    critic: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    update_epochs: int,
    num_minibatches: int,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    max_grad_norm: float,
    target_kl: float | None,
    norm_adv: bool,
    train_policy: bool = True,
    clip_vloss: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """One PPO update over `batch` (flat tensors: obs [B, obs_dim], actions [B, act_dim],
    logprobs [B], advantages [B], returns [B], values [B]; `returns`/`values` are only read when
    a critic is given).

    `actor` must provide `log_prob(obs, actions)` and `dist(obs)` (engine.nets.Actor); `critic`
    maps obs -> [B] values. Returns plain-Python stats: pg_loss, v_loss, entropy (means over the
    gradient steps taken), approx_kl and old_approx_kl (of the last minibatch, the one the
    early-stop rule reads), clipfrac (mean over minibatches), epochs_run, stopped_early,
    grad_steps, explained_variance (of the batch's `values` against `returns`, as CleanRL logs it;
    nan without a critic or with constant returns).
    """
    loss = _loss_of(actor, critic, batch, clip_vloss, clip_coef=clip_coef, ent_coef=ent_coef, vf_coef=vf_coef,
                    norm_adv=norm_adv, train_policy=train_policy)
    if not train_policy and critic is None:
        update_epochs = 0  # nothing can move: a warm-up iteration without a critic

    def kl_stop(run: EpochsRun) -> bool:  # CleanRL's early stop, one read of the GPU per epoch
        return target_kl is not None and run.logs["approx_kl"][-1].item() > target_kl

    obs = batch["obs"]
    run = minibatch_epochs(optimizer, obs.shape[0], loss, update_epochs=update_epochs,
                           num_minibatches=num_minibatches, max_grad_norm=max_grad_norm, generator=generator,
                           device=obs.device, stop=kl_stop)
    zero = torch.zeros((), device=obs.device)
    return {
        "pg_loss": run.mean("pg_loss"),
        "v_loss": run.mean("v_loss"),
        "entropy": run.mean("entropy"),
        "approx_kl": float(run.last("approx_kl", zero).item()),
        "old_approx_kl": float(run.last("old_approx_kl", zero).item()),
        "clipfrac": run.mean("clipfrac"),
        "epochs_run": run.epochs_run,
        "stopped_early": bool(run.stopped_early),
        "grad_steps": len(run.logs.get("pg_loss", [])),
        "explained_variance": _explained_variance(batch, critic is not None),
    }
