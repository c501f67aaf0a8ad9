"""Benchmark: what the opt-in oneDNN path (`PLAYGROUND_ONEDNN=1`, engine/kernels.py) gains over
the default path (Linear + FastTanh modules), measured in one run.

`python -m engine.bench.onednn [--epochs N] [--repeats R] [--threads N]` times, on random data
of pickcube-lite's sizes, the same networks with the same weights on both paths (the switch is
flipped before each timing, the timings interleaved so both see the same machine load):

- the AWR update at the `online-mc16-awr` preset's shape (5,000 samples, 5 minibatches);
- the PPO update at the `gae-ppo` preset's shape (actor and critic);
- a no-grad 4,096-row actor forward, 25 times (MC re-rollouts' shape).

Printed: the best wall and CPU time of each side and the ratio default / oneDNN (above 1: the
oneDNN path is faster). Where the torch build has no usable oneDNN op it says so and measures
nothing.
"""
from __future__ import annotations

import argparse
import copy
import os
from typing import Callable, Sequence

import torch

from .. import kernels
from ..algos.awr import awr_update
from ..algos.ppo import ppo_update
from ..nets import Actor, Critic
from ..runtime import set_threads
from .updates import ACT, MINIBATCHES, OBS, _adam, _best, _data


def _switched(on: bool, fn: Callable[[], None]) -> Callable[[], None]:
    def go() -> None:
        kernels._STATE["onednn"] = on
        fn()
    return go


def _compare(name: str, make: Callable[[], Callable[[], None]], repeats: int, out) -> dict:
    """Best-of-`repeats` interleaved timings of the default and the oneDNN path; ratio default / oneDNN."""
    plain, fused = _switched(False, make()), _switched(True, make())
    plain(), fused()  # warm-up
    pw, pc, fw, fc = [], [], [], []
    for _ in range(repeats):
        w, c = _best(plain, 1)
        pw.append(w), pc.append(c)
        w, c = _best(fused, 1)
        fw.append(w), fc.append(c)
    r = {"default_s": min(pw), "onednn_s": min(fw), "ratio": min(pw) / min(fw), "ratio_cpu": min(pc) / min(fc)}
    out(f"  {name}: default {r['default_s']:.3f} s, oneDNN {r['onednn_s']:.3f} s; default / oneDNN = "
        f"{r['ratio']:.3f} wall, {r['ratio_cpu']:.3f} CPU")
    return r


def run(epochs: int = 10, repeats: int = 5, out=print) -> dict:
    if not kernels.onednn_supported():
        out("onednn bench: this torch build has no usable torch.ops.mkldnn._linear_pointwise: nothing to measure")
        return {"supported": False}
    torch.manual_seed(0)
    d = _data()
    actor, critic = Actor(OBS, ACT), Critic(OBS)
    out(f"onednn bench: best of {repeats}, interleaved; torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"load avg {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    def awr() -> Callable[[], None]:
        a = copy.deepcopy(actor)
        opt, g = _adam([p for p in a.parameters() if p.requires_grad]), torch.Generator().manual_seed(1)
        return lambda: awr_update(a, opt, d["obs"], d["actions"], d["advantages"], beta=0.5, max_weight=20.0,
                                  normalize=True, rescale=True, update_epochs=epochs, num_minibatches=MINIBATCHES,
                                  max_grad_norm=0.5, generator=g)

    def ppo() -> Callable[[], None]:
        a, c = copy.deepcopy(actor), copy.deepcopy(critic)
        opt, g = _adam(list(a.parameters()) + list(c.parameters())), torch.Generator().manual_seed(1)
        batch = {k: d[k] for k in ("obs", "actions", "logprobs", "advantages", "returns", "values")}
        return lambda: ppo_update(a, c, opt, batch, update_epochs=epochs, num_minibatches=MINIBATCHES, clip_coef=0.2,
                                  ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, target_kl=None, norm_adv=True,
                                  generator=g)

    obs = torch.randn(4096, OBS, generator=torch.Generator().manual_seed(3))

    def forward() -> Callable[[], None]:
        a = copy.deepcopy(actor)

        def go() -> None:
            with torch.no_grad():
                for _ in range(25):
                    a.mean(obs)
        return go

    saved = kernels._STATE.get("onednn")
    try:
        res = {"supported": True,
               "awr": _compare(f"AWR update ({epochs * MINIBATCHES} steps of 1,000)", awr, repeats, out),
               "ppo": _compare(f"PPO update ({epochs * MINIBATCHES} steps of 1,000)", ppo, repeats, out),
               "forward": _compare("4,096-row actor forward x 25, no grad", forward, repeats, out)}
    finally:
        kernels._STATE.pop("onednn", None)
        if saved is not None:
            kernels._STATE["onednn"] = saved
    return res


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.onednn", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs of 5 minibatches per update timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the per-core gain)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    return run(a.epochs, a.repeats)


if __name__ == "__main__":
    main()
