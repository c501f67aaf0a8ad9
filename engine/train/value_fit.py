"""Regressing a critic V(s) on return targets: the one minibatch MSE loop that pretraining
(fitting the ladder's critics) and AWR finetuning (keeping a GAE critic current) share."""
from __future__ import annotations

import torch

from ..algos.indices import randperm
from ..nets import Critic
from ..runtime import tick


def regress_values(critic: Critic, optimizer: torch.optim.Optimizer, obs: torch.Tensor, returns: torch.Tensor, *,
                   epochs: int, batch_size: int, generator: torch.Generator,
                   max_grad_norm: float | None = None) -> float:
    """`epochs` shuffled passes of 0.5 * (V(s) - target)^2; returns the last minibatch's loss."""
    n = obs.shape[0]
    loss = torch.zeros((), device=obs.device)
    for _ in range(epochs):
        perm = randperm(n, generator, obs.device)
        for i in range(0, n, batch_size):
            tick()
            idx = perm[i:i + batch_size]
            loss = 0.5 * (critic(obs[idx]) - returns[idx]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(critic.parameters(), max_grad_norm)
            optimizer.step()
    return float(loss.detach())
