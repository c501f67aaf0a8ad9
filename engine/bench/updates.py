"""Benchmark: the finetuning updates' samples per second, against a bare loop, at the presets'
minibatch sizes.

`python -m engine.bench.updates [--steps N]` times, on random data of pickcube-lite's sizes
(21-D observations, 4-D actions, 3x256 Tanh networks; torch threads: the engine's default, auto,
or `--threads N`):

- AWR (`engine.algos.awr.awr_update`) at the `online-mc16-awr` preset's shape: a 5,000-sample
  batch in 5 minibatches of 1,000, the seed's weights (batch-standardised, clamped at 20, mean 1
  per minibatch), max grad norm 0.5;
- PPO (`engine.algos.ppo.ppo_update`) at the `gae-ppo` preset's shape: a 5,000-sample batch in 5
  minibatches of 1,000, actor and critic, KL stop off;

each against a bare loop that does the same arithmetic with nothing else: one gather of the
minibatch, the Gaussian log-likelihood written out, the loss, backward, one global-norm clip
and one fused Adam step. Both sides start from the same weights and take the same number of
gradient steps; the best of `--repeats` interleaved timings is kept. Printed: samples/s of each,
the ratio update / bare (1.0 = no overhead), and process CPU seconds beside wall time.

Then the kernels (`engine.kernels`): the same AWR update, and an MC-style no-grad forward of
4,096 rows, with the networks' `MLP` (FastTanh; oneDNN fused linear+tanh with PLAYGROUND_ONEDNN=1)
against the same weights in plain `nn.Sequential(Linear, Tanh, ...)` modules (torch.tanh): the
ratio plain / fused is the speed-up the kernels give on this machine (`engine.bench.onednn`
measures the oneDNN opt-in alone).
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import time
from typing import Callable, Sequence

import torch
from torch import nn

from ..algos.awr import awr_update
from ..algos.ppo import ppo_update
from ..nets import Actor, Critic
from ..runtime import set_threads
from ..algos.awr import awr_weights
from ..kernels import onednn_available

OBS, ACT, BATCH, MINIBATCHES = 21, 4, 5000, 5
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _data(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(BATCH, OBS, generator=g), "actions": torch.randn(BATCH, ACT, generator=g).clamp(-1, 1),
            "advantages": torch.randn(BATCH, generator=g) * 0.1, "returns": torch.rand(BATCH, generator=g),
            "values": torch.rand(BATCH, generator=g), "logprobs": -torch.rand(BATCH, generator=g) * 4 - 2}


def _logp(actor: Actor, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    mean = actor.mean(obs)
    return (-0.5 * ((act - mean) * torch.exp(-actor.logstd)).pow(2) - actor.logstd - HALF_LOG_2PI).sum(-1)


def _clip_step(params: list[torch.Tensor], opt: torch.optim.Optimizer) -> None:
    grads = [p.grad for p in params]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (0.5 / (norm + 1e-6)).clamp(max=1.0))
    opt.step()


def bare_awr(actor: Actor, opt: torch.optim.Optimizer, d: dict, weights: torch.Tensor, epochs: int,
             gen: torch.Generator) -> None:
    params = [p for p in actor.parameters() if p.requires_grad]
    for _ in range(epochs):
        for mb in torch.randperm(BATCH, generator=gen).chunk(MINIBATCHES):
            w = weights[mb]
            loss = -(w * (w.numel() / w.sum()) * _logp(actor, d["obs"][mb], d["actions"][mb])).mean()
            opt.zero_grad(set_to_none=False)
            loss.backward()
            _clip_step(params, opt)


def bare_ppo(actor: Actor, critic: Critic, opt: torch.optim.Optimizer, d: dict, epochs: int,
             gen: torch.Generator) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    for _ in range(epochs):
        for mb in torch.randperm(BATCH, generator=gen).chunk(MINIBATCHES):
            ratio = (_logp(actor, d["obs"][mb], d["actions"][mb]) - d["logprobs"][mb]).exp()
            adv = d["advantages"][mb]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)).mean()
            v = 0.5 * (critic(d["obs"][mb]) - d["returns"][mb]).pow(2).mean()
            opt.zero_grad(set_to_none=False)
            (pg + 0.5 * v).backward()
            _clip_step(params, opt)


def _best(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def _adam(params, fused: bool = True) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=3e-4, eps=1e-5, fused=fused)


def run(epochs: int = 20, repeats: int = 3, out=print) -> dict:
    torch.manual_seed(0)
    d = _data()
    actor, critic = Actor(OBS, ACT), Critic(OBS)
    steps = epochs * MINIBATCHES
    out(f"update bench: {steps} gradient steps of minibatch {BATCH // MINIBATCHES} per timing, best of {repeats}; "
        f"torch threads {torch.get_num_threads()}, load avg {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    weights = awr_weights(d["advantages"], 0.5, 20.0, True)
    res: dict = {}

    a1, a2 = copy.deepcopy(actor), copy.deepcopy(actor)
    o1, o2 = _adam(a1.parameters()), _adam([p for p in a2.parameters() if p.requires_grad])
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    eng = lambda: awr_update(a1, o1, d["obs"], d["actions"], d["advantages"], beta=0.5, max_weight=20.0,
                             normalize=True, rescale=True, update_epochs=epochs, num_minibatches=MINIBATCHES,
                             max_grad_norm=0.5, generator=g1)
    bare = lambda: bare_awr(a2, o2, d, weights, epochs, g2)
    eng(), bare()  # warm-up
    res["awr"] = _pair(eng, bare, steps, repeats)
    _report("AWR (online-mc16-awr: actor only)", res["awr"], out)

    a1, a2, c1, c2 = copy.deepcopy(actor), copy.deepcopy(actor), copy.deepcopy(critic), copy.deepcopy(critic)
    o1 = _adam(list(a1.parameters()) + list(c1.parameters()))
    o2 = _adam(list(a2.parameters()) + list(c2.parameters()))
    batch = {k: d[k] for k in ("obs", "actions", "logprobs", "advantages", "returns", "values")}
    eng = lambda: ppo_update(a1, c1, o1, batch, update_epochs=epochs, num_minibatches=MINIBATCHES, clip_coef=0.2,
                             ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, target_kl=None, norm_adv=True, generator=g1)
    bare = lambda: bare_ppo(a2, c2, o2, d, epochs, g2)
    eng(), bare()
    res["ppo"] = _pair(eng, bare, steps, repeats)
    _report("PPO (gae-ppo: actor + critic)", res["ppo"], out)

    res["kernels"] = kernels_vs_plain(actor, d, epochs, repeats, out)
    return res


def _plain(actor: Actor) -> Actor:
    """The same actor with its MLP as a plain nn.Sequential (torch's Linear and Tanh modules)."""
    a = copy.deepcopy(actor)
    a.mean = nn.Sequential(*[nn.Tanh() if isinstance(m, nn.Tanh) else m for m in a.mean])
    return a


def kernels_vs_plain(actor: Actor, d: dict, epochs: int, repeats: int, out=print) -> dict:

    res: dict = {"onednn": onednn_available()}
    fused, plain = copy.deepcopy(actor), _plain(actor)
    steps = epochs * MINIBATCHES

    def awr(a: Actor) -> Callable[[], None]:
        opt = _adam([p for p in a.parameters() if p.requires_grad])
        g = torch.Generator().manual_seed(2)
        return lambda: awr_update(a, opt, d["obs"], d["actions"], d["advantages"], beta=0.5, max_weight=20.0,
                                  normalize=True, rescale=True, update_epochs=epochs, num_minibatches=MINIBATCHES,
                                  max_grad_norm=0.5, generator=g)

    f_awr, p_awr = awr(fused), awr(plain)
    f_awr(), p_awr()
    r = _pair(p_awr, f_awr, steps, repeats)  # "engine" = plain, "bare" = fused: ratio = plain / fused
    res["awr_plain_over_fused"], res["awr_plain_over_fused_cpu"] = r["ratio"], r["ratio_cpu"]
    obs = torch.randn(4096, OBS, generator=torch.Generator().manual_seed(3))

    def fwd(a: Actor) -> Callable[[], None]:
        def go() -> None:
            with torch.no_grad():
                for _ in range(25):
                    a.mean(obs)
        return go

    f_fwd, p_fwd = fwd(fused), fwd(plain)
    f_fwd(), p_fwd()
    r = _pair(p_fwd, f_fwd, 25, repeats)
    res["forward_plain_over_fused"], res["forward_plain_over_fused_cpu"] = r["ratio"], r["ratio_cpu"]
    out(f"  kernels ({'oneDNN fused linear+tanh, PLAYGROUND_ONEDNN=1' if res['onednn'] else 'FastTanh'}): "
        f"plain torch modules / fused MLP = {res['awr_plain_over_fused']:.2f} wall, "
        f"{res['awr_plain_over_fused_cpu']:.2f} CPU for the AWR update; {res['forward_plain_over_fused']:.2f} wall, "
        f"{res['forward_plain_over_fused_cpu']:.2f} CPU for a 4,096-row forward (MC re-rollouts)")
    return res


def _pair(eng: Callable, bare: Callable, steps: int, repeats: int) -> dict:
    e_w, e_c, b_w, b_c = [], [], [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        w, c = _best(eng, 1)
        e_w.append(w), e_c.append(c)
        w, c = _best(bare, 1)
        b_w.append(w), b_c.append(c)
    n = steps * (BATCH // MINIBATCHES)
    return {"engine_sps": n / min(e_w), "bare_sps": n / min(b_w), "engine_cpu_sps": n / min(e_c),
            "bare_cpu_sps": n / min(b_c), "ratio": min(e_w) / min(b_w), "ratio_cpu": min(e_c) / min(b_c)}


def _report(name: str, r: dict, out) -> None:
    out(f"  {name}: update {r['engine_sps']:,.0f} samples/s ({r['engine_cpu_sps']:,.0f} per CPU-s), bare loop "
        f"{r['bare_sps']:,.0f} ({r['bare_cpu_sps']:,.0f}); ratio update/bare {r['ratio']:.3f} wall, "
        f"{r['ratio_cpu']:.3f} CPU (1.0 = no overhead)")


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.updates", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20, help="epochs of 5 minibatches per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    set_threads(a.threads)
    return run(a.epochs, a.repeats)


if __name__ == "__main__":
    main()
