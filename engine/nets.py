"""Policy and value networks: ManiSkill PPO's sizes by default (3x256 Tanh MLPs, orthogonal init).

The MLPs are `engine.kernels.MLP` (an `nn.Sequential` of Linear and `FastTanh` modules; with
`PLAYGROUND_ONEDNN=1` its forward runs on oneDNN's fused linear+tanh on CPU): the same modules and
state_dict keys as plain `nn.Sequential(Linear, Tanh, ...)`, so checkpoints load either way.

`Actor` is a Gaussian policy whose mean is an MLP of the observation and whose log-std is one
state-independent parameter vector (learned, or frozen as in the seed's `logstd-1.5`
checkpoints). `Critic` is an MLP V(s). `QNetwork` is an MLP Q(s, a) (IQL).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from .kernels import MLP, FastTanh


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
FORWARD_ROWS = 4096  # a 3x256 MLP's activations stay in cache; one 80k-row call is ~2.3x slower per row


def sliced(fn, x: torch.Tensor, rows: int = FORWARD_ROWS) -> torch.Tensor:
    """`fn(x)` computed in slices of `rows` rows (same result, much faster for large batches)."""
    if x.shape[0] <= rows:
        return fn(x)
    return torch.cat([fn(part) for part in x.split(rows)])


def gaussian_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, on its device, drawn where `generator` lives: a
    CPU generator gives the same draws whatever the device of `like` (a stream that defines the
    experiment, e.g. the offline dataset's actions); a generator on `like`'s device draws there
    (the hot loops' sampling, which stays device-specific: engine.train.device)."""
    dev = like.device if generator is None else generator.device
    noise = torch.randn(like.shape, generator=generator, device=dev, dtype=like.dtype)
    return noise if dev == like.device else noise.to(like.device)


def layer_init(layer: nn.Linear, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(in_dim: int, out_dim: int, layers: int = 3, width: int = 256, out_std: float = 1.0) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [layer_init(nn.Linear(d, width)), FastTanh()]
        d = width
    mods.append(layer_init(nn.Linear(d, out_dim), std=out_std))
    return MLP(*mods)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, layers: int = 3, width: int = 256,
                 logstd_init: float = -0.5, learn_logstd: bool = True):
        super().__init__()
        self.obs_dim, self.act_dim, self.layers, self.width = obs_dim, act_dim, layers, width
        self.mean = mlp(obs_dim, act_dim, layers, width, out_std=0.01 * math.sqrt(2))
        self.logstd = nn.Parameter(torch.full((act_dim,), float(logstd_init)), requires_grad=learn_logstd)

    def set_logstd(self, value: float, learn: bool | None = None) -> None:
        with torch.no_grad():
            self.logstd.fill_(float(value))
        if learn is not None:
            self.logstd.requires_grad_(learn)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs)

    def dist(self, obs: torch.Tensor) -> Normal:
        mean = self.mean(obs)
        # no argument validation: it re-checks loc/scale (and every sample in log_prob) with
        # reductions and a Python sync on each call; the values are the same without it
        return Normal(mean, self.logstd.exp().expand_as(mean), validate_args=False)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """sum_j log N(action_j; mean_j, std_j), written out (the same value as
        `self.dist(obs).log_prob(action).sum(-1)` with fewer tensor operations per call)."""
        z = (action - self.mean(obs)) * torch.exp(-self.logstd)
        return (z.square().mul_(-0.5) - self.logstd).sum(-1) - self.act_dim * _HALF_LOG_2PI

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean action, or a sample from N(mean, std) (noise from `generator` when given, drawn on
        the generator's device: `gaussian_noise`)."""
        mean = self.mean(obs)
        if deterministic:
            return mean
        return mean + gaussian_noise(mean, generator) * self.logstd.exp()

    @torch.no_grad()
    def act_with_logprob(self, obs: torch.Tensor, generator: torch.Generator | None = None):
        mean = self.mean(obs)
        std = self.logstd.exp()
        noise = gaussian_noise(mean, generator)
        action = mean + noise * std
        logp = (-0.5 * noise.pow(2) - self.logstd - 0.5 * math.log(2 * math.pi)).sum(-1)
        return action, logp


class Critic(nn.Module):
    def __init__(self, obs_dim: int, layers: int = 3, width: int = 256):
        super().__init__()
        self.obs_dim, self.layers, self.width = obs_dim, layers, width
        self.net = mlp(obs_dim, 1, layers, width, out_std=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, layers: int = 2, width: int = 256):
        super().__init__()
        self.obs_dim, self.act_dim, self.layers, self.width = obs_dim, act_dim, layers, width
        self.net = mlp(obs_dim + act_dim, 1, layers, width, out_std=1.0)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], -1)).squeeze(-1)
