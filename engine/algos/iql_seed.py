"""IQL trained the way the seed's ranking scripts train it (`methods/iql/iql.py` in zyc00/OfflineRLPlayGround).

`engine.algos.iql.fit_iql` is the finetuning loop's IQL (CORL-style: twin 2-layer Qs with a
minimum, plain Adam, a fixed number of gradient steps). The seed's action-ranking analysis
(`methods/gae/rank_mc_vs_gae.py`) fits IQL differently, and this module follows that recipe:

- ONE Q(s, a) network, 3 hidden Tanh layers (width 256 by default), and V(s) of the same shape;
  a Polyak-averaged (rate 0.005) copy of Q is the target V regresses on.
- Adam with L2 weight decay 1e-4 (`torch.optim.Adam(weight_decay=...)`, as the seed's code does;
  not AdamW), lr 3e-4, eps 1e-5, a cosine schedule over the epochs down to 1e-5, gradient-norm
  clipping at 0.5, minibatches of 256.
- A random 10% of the transitions held out; after every epoch the validation loss (Q's TD loss +
  V's expectile loss) is measured, the best networks are kept, and training stops after
  `patience` epochs without improvement.
- n-step TD targets for Q (`nstep_targets`; the ranking script uses n = 10): Q(s_t, a_t) ->
  sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m}), m = min(n, steps to the episode's end); no
  bootstrap when the episode terminated inside the n steps.

One difference, for this machine: the seed trains 200 epochs; here the number of epochs is also
capped so that the whole fit takes at most `max_steps` gradient steps (with ~10^5 transitions
that is ~10 epochs, the seed's own "Default IQL (3x256, 10ep)" row in rank_iql_tune).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ..nets import Critic, QNetwork
from ..runtime import tick
from .indices import randperm
from .iql import IQLResult, expectile_loss, seeded

__all__ = ["nstep_targets", "fit_iql_seed"]


@torch.no_grad()
def nstep_targets(rewards: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor, done: torch.Tensor,
                  n: int, gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n-step returns over a [T, B] window: (G [T, B], bootstrap obs [T, B, D], discount [T, B]).

    G_t sums gamma^k r_{t+k} for k < m, where the sum stops after the first `done` step or at the
    window's end; the bootstrap state is next_obs[t + m - 1] with discount gamma^m, or 0 when the
    episode terminated (success) inside those m steps (a time-limit end is bootstrapped)."""
    if n < 1:
        raise ValueError(f"nstep_targets: n must be >= 1, got {n}")
    T, B = rewards.shape
    t_idx = torch.arange(T, device=rewards.device)[:, None].expand(T, B)
    b_idx = torch.arange(B, device=rewards.device)[None, :].expand(T, B)
    G = torch.zeros(T, B, dtype=torch.float32, device=rewards.device)
    last = t_idx.clone()
    term_hit = torch.zeros(T, B, dtype=torch.bool, device=rewards.device)
    going = torch.ones(T, B, dtype=torch.bool, device=rewards.device)
    done, terminated = done.bool(), terminated.bool()
    for k in range(n):
        idx = t_idx + k
        going = going & (idx < T)
        j = idx.clamp(max=T - 1)
        G += going.float() * (gamma ** k) * rewards[j, b_idx].float()
        last = torch.where(going, j, last)
        term_hit |= going & terminated[j, b_idx]
        going = going & ~done[j, b_idx]
    m = (last - t_idx + 1).float()
    disc = torch.where(term_hit, torch.zeros_like(m), gamma ** m)
    return G, next_obs[last, b_idx], disc


def _val_loss(q_net, q_target, v_net, d: dict, idx: torch.Tensor, tau: float) -> float:
    with torch.no_grad():
        y = d["G"][idx] + d["disc"][idx] * v_net(d["boot"][idx])
        q_loss = 0.5 * (q_net(d["obs"][idx], d["act"][idx]) - y).pow(2).mean()
        v_loss = expectile_loss(q_target(d["obs"][idx], d["act"][idx]) - v_net(d["obs"][idx]), tau)
    return float(q_loss + v_loss)


def _epoch(nets: tuple, opts: tuple, d: dict, train_idx: torch.Tensor, tau: float, bs: int,
           polyak: float, clip: float, generator) -> None:
    q_net, q_target, v_net = nets
    q_opt, v_opt = opts
    order = train_idx[randperm(train_idx.numel(), generator, train_idx.device)]
    for i in range(0, order.numel(), bs):
        tick()
        mb = order[i:i + bs]
        s, a = d["obs"][mb], d["act"][mb]
        with torch.no_grad():
            y = d["G"][mb] + d["disc"][mb] * v_net(d["boot"][mb])
        q_loss = 0.5 * (q_net(s, a) - y).pow(2).mean()
        q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        nn.utils.clip_grad_norm_(q_net.parameters(), clip)
        q_opt.step()
        with torch.no_grad():
            target_q = q_target(s, a)
        v_loss = expectile_loss(target_q - v_net(s), tau)
        v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        nn.utils.clip_grad_norm_(v_net.parameters(), clip)
        v_opt.step()
        with torch.no_grad():
            for pt, p in zip(q_target.parameters(), q_net.parameters()):
                pt.lerp_(p, polyak)


def fit_iql_seed(obs: torch.Tensor, actions: torch.Tensor, nstep_return: torch.Tensor, boot_obs: torch.Tensor,
                 discount: torch.Tensor, *, tau: float, width: int = 256, layers: int = 3, epochs: int = 200,
                 max_steps: int = 4000, patience: int = 100, batch_size: int = 256, lr: float = 3e-4,
                 weight_decay: float = 1e-4, clip: float = 0.5, polyak: float = 0.005, val_frac: float = 0.1,
                 generator: torch.Generator | None = None) -> IQLResult:
    """Fit the seed's IQL on flat transitions with n-step targets (see the module docstring).
    Returns an `IQLResult` whose q_net is the single best-validation Q (so `iql_advantages` and
    `iql_values` of engine.algos.iql apply); stats: epochs_run, best_epoch, val_loss, transitions."""
    M = obs.shape[0]
    if M < 2:
        raise ValueError(f"fit_iql_seed: need at least 2 transitions, got {M}")
    d = {"obs": obs.detach().float(), "act": actions.detach().float(), "G": nstep_return.detach().float(),
         "boot": boot_obs.detach().float(), "disc": discount.detach().float()}
    with seeded(generator):
        q_net = QNetwork(obs.shape[1], actions.shape[1], layers, width).to(obs.device)
        v_net = Critic(obs.shape[1], layers, width).to(obs.device)
    q_target = copy.deepcopy(q_net).requires_grad_(False)
    opts = tuple(torch.optim.Adam(n.parameters(), lr=lr, eps=1e-5, weight_decay=weight_decay) for n in (q_net, v_net))
    perm = randperm(M, generator, obs.device)
    n_val = max(1, int(M * val_frac))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    bs = max(1, min(batch_size, train_idx.numel()))
    epochs = max(1, min(epochs, max_steps // max(1, math.ceil(train_idx.numel() / bs))))
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=1e-5) for o in opts]
    best: dict[str, Any] = {"loss": math.inf, "epoch": 0, "q": None, "v": None}
    run = 0
    for ep in range(epochs):
        _epoch((q_net, q_target, v_net), opts, d, train_idx, tau, bs, polyak, clip, generator)
        for s in scheds:
            s.step()
        run = ep + 1
        loss = _val_loss(q_net, q_target, v_net, d, val_idx, tau)
        if loss < best["loss"]:
            best = {"loss": loss, "epoch": run, "q": copy.deepcopy(q_net.state_dict()),
                    "v": copy.deepcopy(v_net.state_dict())}
        elif run - best["epoch"] >= patience:
            break
    q_net.load_state_dict(best["q"])
    v_net.load_state_dict(best["v"])
    stats = {"epochs_run": run, "epochs_planned": epochs, "best_epoch": best["epoch"], "val_loss": best["loss"],
             "transitions": int(M), "width": width, "layers": layers, "tau": tau}
    return IQLResult(q_net=q_net.eval(), v_net=v_net.eval(), stats=stats)
