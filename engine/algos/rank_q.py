"""rank-q: an action-scoring network f(s, a) trained with a within-state ranking loss instead of
MSE, the seed repository's first open direction (README, "Experiment Plan", Phase 2: "contrastive/
ranking loss instead of MSE to directly optimize within-state ordering", and "leverage action
diversity in offline data to construct pairwise comparisons").

Pairs (i, j) of samples that share a state are compared by their return targets y: the pairwise
logistic (RankNet) loss

    L = mean over pairs of softplus(-sign(y_i - y_j) * (f(s_i, a_i) - f(s_j, a_j)))

only asks f to order the actions of one state, so the state's value (the cross-state variance
that drowns a Q-network's ~1/500 within-state signal, the seed's finding) never has to be fitted.
Pairs whose targets tie (|y_i - y_j| <= `tie`, e.g. two failures under the sparse reward) carry
no order and are dropped. Where the pairs come from:

- `group_pairs(group)`: explicit groups, every pair within a group (the ranking analysis: K
  candidate actions of each state, group = state index, y = the candidates' branch returns).
- `neighbour_pairs(obs, k, exclude)`: trajectory data has one action per state, so each sample
  is paired with its k nearest samples in standardised observation space (near-identical
  states, other actions), never with one of the same `exclude` id (its own trajectory, whose
  returns differ by the discounting along it, not by the action).

f is identified only up to a function of the state, so advantages are centred per state:
A(s, a) = f(s, a) - mean_k f(s, a'_k) over `center_samples` actions a'_k of `policy` (or f as is
without a policy: enough to rank the candidates of one state).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.nn import functional as F

from ..nets import QNetwork
from .iql import seeded
from .loops import fit_steps
from .supervised import predict

__all__ = ["RankQResult", "group_pairs", "neighbour_pairs", "fit_rank_q", "rank_q_advantages"]


@dataclass
class RankQResult:
    net: QNetwork                # (obs, actions) -> score f
    stats: dict[str, Any] = field(default_factory=dict)


def group_pairs(group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every unordered pair (i < j) of samples with the same group id; two [P] index tensors."""
    g = group.view(-1)
    order = torch.argsort(g, stable=True)
    counts = torch.unique_consecutive(g[order], return_counts=True)[1]
    ii, jj, start = [], [], 0
    for c in counts.tolist():
        if c > 1:
            a, b = torch.triu_indices(c, c, offset=1, device=g.device)
            ii.append(order[start + a])
            jj.append(order[start + b])
        start += c
    if not ii:
        empty = torch.zeros(0, dtype=torch.long, device=g.device)
        return empty, empty
    return torch.cat(ii), torch.cat(jj)


@torch.no_grad()
def neighbour_pairs(obs: torch.Tensor, k: int, exclude: torch.Tensor | None = None,
                    chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j): each sample i with its k nearest samples j (Euclidean in per-dimension standardised
    obs; never itself, never one with the same `exclude` id). Two [M * k'] index tensors, k' =
    min(k, the candidates a sample has)."""
    x = obs.detach().float()
    m = x.shape[0]
    x = (x - x.mean(0)) / (x.std(0) + 1e-6) if m > 1 else x
    ex = exclude.view(-1) if exclude is not None else torch.arange(m, device=x.device)
    kk = min(k, m - 1)
    if kk < 1:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return empty, empty
    ii, jj = [], []
    for s in range(0, m, chunk):
        d = torch.cdist(x[s:s + chunk], x)
        rows = torch.arange(s, min(s + chunk, m), device=x.device)
        d[ex[rows][:, None] == ex[None, :]] = float("inf")
        d[torch.arange(len(rows), device=x.device), rows] = float("inf")
        dist, idx = torch.topk(d, kk, dim=1, largest=False)
        keep = torch.isfinite(dist)
        ii.append(rows[:, None].expand_as(idx)[keep])
        jj.append(idx[keep])
    return torch.cat(ii), torch.cat(jj)


def fit_rank_q(obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
               pairs: tuple[torch.Tensor, torch.Tensor], *, steps: int, batch_size: int = 512,
               lr: float = 3e-4, layers: int = 3, width: int = 256, tie: float = 1e-6,
               max_grad_norm: float | None = 0.5, generator: torch.Generator | None = None) -> RankQResult:
    """Train f on the pairs' order by `targets` [M] with the pairwise logistic loss (module
    docstring). stats: pairs (ordered pairs used), pair_accuracy (of f on them at the end),
    loss (mean of the last 10% of steps)."""
    y = targets.detach().float().view(-1)
    x_o, x_a = obs.detach().float(), actions.detach().float()
    i, j = pairs
    diff = y[i] - y[j]
    keep = diff.abs() > tie
    i, j, sign = i[keep], j[keep], torch.sign(diff[keep])
    with seeded(generator):
        net = QNetwork(x_o.shape[1], x_a.shape[1], layers, width).to(obs.device)
    p = int(i.numel())
    if p == 0:  # nothing to order: f stays at its init (A = 0 after centring, or close to it)
        return RankQResult(net, {"pairs": 0, "pair_accuracy": float("nan"), "loss": float("nan")})

    def batch_loss(b: torch.Tensor) -> torch.Tensor:
        bi, bj = i[b], j[b]
        margin = net(x_o[bi], x_a[bi]) - net(x_o[bj], x_a[bj])
        return F.softplus(-sign[b] * margin).mean()

    loss = fit_steps(net.parameters(), batch_loss, n=p, batch_size=min(batch_size, p), steps=steps, lr=lr,
                     max_grad_norm=max_grad_norm, generator=generator, device=obs.device)
    f = predict(net, x_o, x_a)
    acc = float(((f[i] - f[j]) * sign > 0).float().mean())
    return RankQResult(net, {"pairs": p, "pair_accuracy": acc, "loss": loss})


@torch.no_grad()
def rank_q_advantages(result: RankQResult, obs: torch.Tensor, actions: torch.Tensor,
                      policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      center_samples: int = 8) -> torch.Tensor:
    """A(s, a) = f(s, a) - mean over `center_samples` policy actions of f(s, .), [M] (f itself
    when `policy` is None)."""
    f = predict(result.net, obs, actions)
    if policy is None or center_samples < 1:
        return f
    base = torch.zeros_like(f)
    for _ in range(center_samples):
        base += predict(result.net, obs, policy(obs.float()))
    return f - base / center_samples
