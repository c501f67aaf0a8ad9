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

from typing import Any

import torch
from ..runtime import tick
from torch import nn

from .indices import randperm

__all__ = ["ppo_update", "minibatch_indices"]


def minibatch_indices(n: int, num_minibatches: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> list[torch.Tensor]:
    """A random permutation of range(n) split into `num_minibatches` near-equal parts (empty parts
    dropped, so a batch smaller than num_minibatches gives minibatches of size 1)."""
    perm = randperm(n, generator, "cpu" if device is None else device)
    return [p for p in torch.tensor_split(perm, max(1, int(num_minibatches))) if p.numel() > 0]


def _optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in optimizer.param_groups for p in g["params"]]


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
    obs = batch["obs"]
    actions = batch["actions"]
    old_logprobs = batch["logprobs"].detach()
    advantages = batch["advantages"].detach()
    B = obs.shape[0]
    if B == 0:
        raise ValueError("ppo_update: empty batch")
    use_critic = critic is not None
    if use_critic:
        returns = batch["returns"].detach()
        old_values = batch.get("values")
        old_values = old_values.detach() if old_values is not None else None
        if clip_vloss and old_values is None:
            raise ValueError("ppo_update: clip_vloss needs batch['values']")

    params = _optimizer_params(optimizer)
    # per-minibatch stats stay tensors (0-d, on the data's device) and are read once at the end:
    # each .item() in the loop would wait for the GPU
    stats_pg: list[torch.Tensor] = []
    stats_v: list[torch.Tensor] = []
    stats_ent: list[torch.Tensor] = []
    clipfracs: list[torch.Tensor] = []
    approx_kl = torch.zeros((), device=obs.device)
    old_approx_kl = torch.zeros((), device=obs.device)
    epochs_run = 0
    stopped_early = False

    if not train_policy and not use_critic:
        # Nothing can move: a warm-up iteration without a critic.
        update_epochs = 0

    for _epoch in range(update_epochs):
        epochs_run += 1
        for mb in minibatch_indices(B, num_minibatches, generator, device=obs.device):
            tick()
            mb_obs, mb_act = obs[mb], actions[mb]
            if train_policy:
                dist = actor.dist(mb_obs)
                newlogprob = dist.log_prob(mb_act).sum(-1)
                entropy = dist.entropy().sum(-1).mean()
            else:
                with torch.no_grad():
                    dist = actor.dist(mb_obs)
                    newlogprob = dist.log_prob(mb_act).sum(-1)
                    entropy = dist.entropy().sum(-1).mean()
            logratio = newlogprob - old_logprobs[mb]
            ratio = logratio.exp()
            with torch.no_grad():
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs.append(((ratio - 1.0).abs() > clip_coef).float().mean())

            mb_adv = advantages[mb]
            if norm_adv and mb_adv.numel() > 1:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss1 = -mb_adv * ratio
            pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()

            if use_critic:
                newvalue = critic(mb_obs).view(-1)
                if clip_vloss:
                    v_clipped = old_values[mb] + torch.clamp(newvalue - old_values[mb], -clip_coef, clip_coef)
                    v_loss = 0.5 * torch.max((newvalue - returns[mb]) ** 2, (v_clipped - returns[mb]) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newvalue - returns[mb]) ** 2).mean()
            else:
                v_loss = torch.zeros((), device=obs.device)

            if train_policy:
                loss = pg_loss - ent_coef * entropy + vf_coef * v_loss
            else:
                loss = vf_coef * v_loss

            optimizer.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
                if max_grad_norm is not None and max_grad_norm > 0:
                    nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_grad_norm)
                optimizer.step()
            stats_pg.append(pg_loss.detach())
            stats_v.append(v_loss.detach())
            stats_ent.append(entropy.detach())

        if target_kl is not None and approx_kl.item() > target_kl:  # one read per epoch
            stopped_early = epochs_run < update_epochs
            break

    explained_var = float("nan")
    if use_critic and batch.get("values") is not None:
        y_pred, y_true = batch["values"].detach().float(), batch["returns"].detach().float()
        var_y = y_true.var(unbiased=False)
        if var_y.item() > 0:
            explained_var = (1 - (y_true - y_pred).var(unbiased=False) / var_y).item()

    def _mean(xs: list[torch.Tensor]) -> float:
        return float(sum(torch.stack(xs).tolist()) / len(xs)) if xs else 0.0

    return {
        "pg_loss": _mean(stats_pg),
        "v_loss": _mean(stats_v),
        "entropy": _mean(stats_ent),
        "approx_kl": float(approx_kl.item()),
        "old_approx_kl": float(old_approx_kl.item()),
        "clipfrac": _mean(clipfracs),
        "epochs_run": epochs_run,
        "stopped_early": bool(stopped_early),
        "grad_steps": len(stats_pg),
        "explained_variance": explained_var,
    }
