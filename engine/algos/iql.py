"""Implicit Q-Learning's critic (Kostrikov et al. 2021), CORL-style, for advantage estimation.

Only the value part of IQL is fitted here (the policy is updated by the training loop, with AWR
or PPO, from the advantages this module returns). Per gradient step, on a random minibatch:

1. V by expectile regression on the target twin-Q:
       u = min(Q1_targ, Q2_targ)(s, a) - V(s);   L_V = mean(|tau - 1(u < 0)| * u^2)
   With tau > 0.5, V below the target (u > 0) costs more, so V tracks an upper expectile of
   Q(s, .) over the data's actions: an in-sample approximation of max_a Q.
2. Both Qs by TD on r + gamma * (1 - terminated) * V(s') (V not differentiated):
       L_Q = (mean((Q1 - y)^2) + mean((Q2 - y)^2)) / 2
3. Polyak update of the target twin-Q with rate `polyak`.

`iql_advantages` gives Q(s, a) - V(s) with the target twin-min Q (what CORL weights its actor
with); `iql_values` gives V(s), which `iql-v-gae` feeds into GAE (seed finding 8: IQL's V is
good, its Q cannot rank actions within a state).

Truncation note: `terminated` must be true only for real task ends (success); a time-limit end
is not terminal, so its next_obs is bootstrapped through V.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from ..nets import Critic, QNetwork
from ..runtime import tick
from .indices import randint, random_seed

__all__ = ["expectile_loss", "TwinQ", "IQLResult", "fit_iql", "iql_advantages", "iql_values", "seeded"]


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """Asymmetric squared loss mean(|tau - 1(diff < 0)| * diff^2), diff = target - prediction.

    At tau = 0.5 this is exactly half the mean squared error; tau > 0.5 weights diff > 0 (the
    prediction underestimating the target) by tau and overestimation by 1 - tau.
    """
    weight = torch.abs(tau - (diff < 0).to(diff.dtype))
    return (weight * diff.pow(2)).mean()


@contextlib.contextmanager
def seeded(generator: torch.Generator | None) -> Iterator[None]:
    """Run the body with the global torch RNG seeded from `generator` (network init is
    reproducible per generator) and restore the global RNG afterwards. No-op for None."""
    if generator is None:
        yield
        return
    seed = random_seed(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class TwinQ(nn.Module):
    """Two independent Q(s, a) networks; forward returns their elementwise minimum."""

    def __init__(self, obs_dim: int, act_dim: int, layers: int = 2, width: int = 256):
        super().__init__()
        self.q1 = QNetwork(obs_dim, act_dim, layers, width)
        self.q2 = QNetwork(obs_dim, act_dim, layers, width)

    def both(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs, action), self.q2(obs, action)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.min(*self.both(obs, action))


@dataclass
class IQLResult:
    q_net: TwinQ                 # the target twin-Q (min of the pair): Q(s, a) for advantages
    v_net: Critic                # V(s) (expectile of Q over the data's actions)
    stats: dict[str, Any] = field(default_factory=dict)
    q_online: TwinQ | None = None  # the online twin-Q (the one trained by TD), for diagnostics


def fit_iql(
    obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    *,
    gamma: float,
    tau: float,
    steps: int,
    batch_size: int = 256,
    lr: float = 3e-4,
    q_layers: int = 2,
    width: int = 256,
    polyak: float = 0.005,
    generator: torch.Generator | None = None,
) -> IQLResult:
    """Fit IQL's twin-Q and V on flat transitions (obs [M, obs_dim], actions [M, act_dim],
    rewards [M], next_obs [M, obs_dim], terminated [M]) for `steps` gradient steps.

    V has the same depth/width as the Qs. Rewards are used as given (the caller applies
    reward_scale). `generator` seeds network init and minibatch sampling (reproducible).
    stats: v_loss, q_loss (means over the last 10% of steps), q_mean, v_mean, adv_mean
    (on the whole dataset at the end), steps.
    """
    M, obs_dim = obs.shape
    if M == 0:
        raise ValueError("fit_iql: empty dataset")
    device = obs.device
    data = (obs.detach().float(), actions.detach().float(), rewards.detach().float().view(-1),
            next_obs.detach().float(), 1.0 - terminated.detach().float().view(-1))
    with seeded(generator):
        q_net = TwinQ(obs_dim, actions.shape[1], q_layers, width).to(device)
        v_net = Critic(obs_dim, q_layers, width).to(device)
    q_target = copy.deepcopy(q_net).requires_grad_(False)
    step = _IQLStep(q_net, v_net, q_target, torch.optim.Adam(q_net.parameters(), lr=lr),
                    torch.optim.Adam(v_net.parameters(), lr=lr), gamma=gamma, tau=tau, polyak=polyak)
    bs = min(batch_size, M)
    tail = max(1, steps // 10)
    v_hist: list[torch.Tensor] = []  # read once at the end (an .item() per step would wait for the GPU)
    q_hist: list[torch.Tensor] = []
    for i in range(steps):
        tick()
        idx = randint(M, bs, generator, device)
        v_loss, q_loss = step(*(x[idx] for x in data))
        if i >= steps - tail:
            v_hist.append(v_loss)
            q_hist.append(q_loss)
    result = IQLResult(q_net=q_target, v_net=v_net, q_online=q_net)
    result.stats = _fit_stats(result, data[0], data[1], v_hist, q_hist, steps)
    return result


@dataclass
class _IQLStep:
    """One IQL gradient step on a minibatch (s, a, r, s', 1 - terminated): the module docstring's
    1. V step, 2. Q step, 3. Polyak update. Returns the detached (v_loss, q_loss)."""
    q_net: TwinQ
    v_net: Critic
    q_target: TwinQ
    q_opt: torch.optim.Optimizer
    v_opt: torch.optim.Optimizer
    gamma: float
    tau: float
    polyak: float

    def __call__(self, s: torch.Tensor, a: torch.Tensor, r: torch.Tensor, s2: torch.Tensor,
                 nt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_loss = self.v_step(s, a)
        q_loss = self.q_step(s, a, r, s2, nt)
        with torch.no_grad():
            for pt, p in zip(self.q_target.parameters(), self.q_net.parameters()):
                pt.lerp_(p, self.polyak)
        return v_loss.detach(), q_loss.detach()

    def v_step(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """V <- expectile of the target twin-min Q."""
        with torch.no_grad():
            target_q = self.q_target(s, a)
        v_loss = expectile_loss(target_q - self.v_net(s), self.tau)
        self.v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_opt.step()
        return v_loss

    def q_step(self, s: torch.Tensor, a: torch.Tensor, r: torch.Tensor, s2: torch.Tensor,
               nt: torch.Tensor) -> torch.Tensor:
        """Q <- r + gamma * (1 - term) * V(s')."""
        with torch.no_grad():
            y = r + self.gamma * nt * self.v_net(s2)
        q1, q2 = self.q_net.both(s, a)
        q_loss = 0.5 * (((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean())
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.q_opt.step()
        return q_loss


def _fit_stats(result: IQLResult, obs: torch.Tensor, actions: torch.Tensor, v_hist: list[torch.Tensor],
               q_hist: list[torch.Tensor], steps: int) -> dict[str, Any]:
    """fit_iql's stats: the tail's mean losses and Q, V, A on the whole dataset."""
    q_all = _batched(lambda o, a: result.q_net(o, a), obs, actions)
    v_all = iql_values(result, obs)
    return {
        "v_loss": float(sum(torch.stack(v_hist).tolist()) / len(v_hist)) if v_hist else float("nan"),
        "q_loss": float(sum(torch.stack(q_hist).tolist()) / len(q_hist)) if q_hist else float("nan"),
        "q_mean": q_all.mean().item(),
        "v_mean": v_all.mean().item(),
        "adv_mean": (q_all - v_all).mean().item(),
        "steps": int(steps),
    }


@torch.no_grad()
def _batched(fn, *tensors: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    n = tensors[0].shape[0]
    return torch.cat([fn(*(t[i:i + chunk] for t in tensors)) for i in range(0, n, chunk)]) if n else \
        torch.zeros(0, device=tensors[0].device)


@torch.no_grad()
def iql_advantages(result: IQLResult, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """A(s, a) = min-twin target Q(s, a) - V(s), [M]."""
    q = _batched(lambda o, a: result.q_net(o, a), obs.float(), actions.float())
    return q - iql_values(result, obs)


@torch.no_grad()
def iql_values(result: IQLResult, obs: torch.Tensor) -> torch.Tensor:
    """V(s), [M] (for iql-v-gae: pass V(obs) and V(final_obs) to `gae`)."""
    return _batched(lambda o: result.v_net(o), obs.float())
