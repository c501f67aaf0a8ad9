"""Fitting a network to targets by minibatch MSE for a fixed number of gradient steps: the one
fit the regression-based estimators share (sarsa's `mc` target: Q and V on returns; two-stage:
V on returns, then A on returns - V). The step loop itself is engine.algos.loops.fit_steps,
shared with rank-q's pairwise fit."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .loops import fit_steps

__all__ = ["fit_mse", "predict"]


def fit_mse(net: nn.Module, inputs: tuple[torch.Tensor, ...], targets: torch.Tensor, *, steps: int,
            batch_size: int = 256, lr: float = 3e-4, max_grad_norm: float | None = 0.5,
            generator: torch.Generator | None = None) -> float:
    """`steps` Adam steps of 0.5 * mean((net(*inputs[idx]) - targets[idx])^2) on uniform minibatches;
    returns the mean loss of the last 10% of the steps."""
    m = targets.shape[0]
    if m == 0:
        raise ValueError("fit_mse: empty dataset")
    y = targets.detach().float().view(-1)
    xs = tuple(x.detach().float() for x in inputs)
    bs = max(1, min(batch_size, m))

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        return 0.5 * (net(*(x[idx] for x in xs)) - y[idx]).pow(2).mean()

    return fit_steps(net.parameters(), batch_loss, n=m, batch_size=bs, steps=steps, lr=lr,
                     max_grad_norm=max_grad_norm, generator=generator, device=y.device)


@torch.no_grad()
def predict(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """fn over row chunks of `tensors` (all [M, ...]), concatenated: [M]."""
    n = tensors[0].shape[0]
    if n == 0:
        return torch.zeros(0, device=tensors[0].device)
    return torch.cat([fn(*(t[i:i + chunk].float() for t in tensors)) for i in range(0, n, chunk)])
