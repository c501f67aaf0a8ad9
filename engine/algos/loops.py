"""The gradient loops the algorithms share, so each update or fit only says what its loss is.

- `gradient_step`: zero the gradients, backpropagate, clip the global norm of the gradients that
  exist, step (nothing but the zeroing when the loss carries no graph, e.g. a PPO warm-up without
  a critic).
- `minibatch_epochs`: `update_epochs` passes over a batch, each cut into `num_minibatches` random
  minibatches (`minibatch_indices`), one `gradient_step` per minibatch, with an optional check
  after each epoch that ends the loop early (PPO's KL stop). The policy updates use it: PPO
  (engine.algos.ppo), AWR (awr) and RECAP (recap).
- `fit_steps`: a fixed number of Adam steps on uniform random minibatches of a dataset, reporting
  the mean loss of the last 10% of the steps: the regression fits (supervised.fit_mse: sarsa and
  two-stage) and the rank-q pairwise fit (rank_q).

Per-step statistics stay 0-d tensors and are read once at the end: an `.item()` per step would
wait for the GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from ..runtime import tick
from .indices import minibatch_indices, randint

__all__ = ["gradient_step", "optimizer_params", "EpochsRun", "minibatch_epochs", "fit_steps"]

# one minibatch's (loss, {name: 0-d tensor}) from its indices
MinibatchLoss = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every parameter the optimizer holds (the set whose global gradient norm is clipped)."""
    return [p for g in optimizer.param_groups for p in g["params"]]


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor],
                  max_grad_norm: float | None) -> None:
    """zero_grad, backward, clip the global norm over the `params` that got a gradient (when
    `max_grad_norm` > 0), step. A loss without a graph only zeroes the gradients."""
    optimizer.zero_grad(set_to_none=True)
    if not loss.requires_grad:
        return
    loss.backward()
    if max_grad_norm is not None and max_grad_norm > 0:
        nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_grad_norm)
    optimizer.step()


@dataclass
class EpochsRun:
    """What `minibatch_epochs` did: each statistic per gradient step (detached 0-d tensors)."""
    logs: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False

    @property
    def grad_steps(self) -> int:
        return max((len(v) for v in self.logs.values()), default=0)

    def mean(self, key: str) -> float:
        """Mean over the steps (summed in float64 on the host), 0.0 without any."""
        xs = self.logs.get(key, [])
        return float(sum(torch.stack(xs).tolist()) / len(xs)) if xs else 0.0

    def last(self, key: str, default: torch.Tensor) -> torch.Tensor:
        xs = self.logs.get(key)
        return xs[-1] if xs else default


def minibatch_epochs(optimizer: torch.optim.Optimizer, n: int, minibatch_loss: MinibatchLoss, *,
                     update_epochs: int, num_minibatches: int, max_grad_norm: float | None,
                     generator: torch.Generator | None, device: torch.device | str,
                     stop: Callable[[EpochsRun], bool] | None = None) -> EpochsRun:
    """`update_epochs` passes over range(n) in random minibatches, one `gradient_step` on
    `minibatch_loss(indices)` each. `stop(run)`, asked after every epoch, ends the loop early
    (`stopped_early` is then True when epochs were left)."""
    params = optimizer_params(optimizer)
    run = EpochsRun()
    for _ in range(update_epochs):
        run.epochs_run += 1
        for mb in minibatch_indices(n, num_minibatches, generator, device=device):
            tick()
            loss, stats = minibatch_loss(mb)
            gradient_step(optimizer, loss, params, max_grad_norm)
            for key, value in stats.items():
                run.logs.setdefault(key, []).append(value.detach())
        if stop is not None and stop(run):
            run.stopped_early = run.epochs_run < update_epochs
            break
    return run


def fit_steps(params: Iterable[torch.Tensor], batch_loss: Callable[[torch.Tensor], torch.Tensor], *, n: int,
              batch_size: int, steps: int, lr: float, max_grad_norm: float | None,
              generator: torch.Generator | None, device: torch.device | str) -> float:
    """`steps` Adam steps of `batch_loss(indices)`, the indices `batch_size` uniform draws from
    range(n); returns the mean loss of the last 10% of the steps (nan without steps)."""
    params = list(params)
    opt = torch.optim.Adam(params, lr=lr)
    tail = max(1, steps // 10)
    hist: list[torch.Tensor] = []
    for step in range(steps):
        tick()
        loss = batch_loss(randint(n, batch_size, generator, device))
        gradient_step(opt, loss, params, max_grad_norm)
        if step >= steps - tail:
            hist.append(loss.detach())
    return float(torch.stack(hist).mean()) if hist else float("nan")
