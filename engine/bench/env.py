"""Benchmark: pickcube-lite env steps/s against the policy forward pass, at several batch sizes.

`python -m engine.bench.env [--batches 100,5000,80000] [--steps N] [--repeats 3] [--threads T]`
measures in one process, for each batch size B:

- env steps/s: `PickCubeLite(B).step` with uniform random actions (pre-drawn), autoreset on.
  Random actions almost never succeed, so the envs truncate together every 50 steps ("sync");
  the "staggered" column spreads the envs' elapsed steps so ~B/50 envs autoreset on every step,
  as in training with partial resets;
- policy states/s: `engine.nets.Actor` (3x256 Tanh) `act(obs, deterministic=False)` under no_grad;
- the ratio env-step time / policy-forward time at the same batch (< 1: the policy bounds a
  policy+env loop, e.g. MC re-rollouts).

Rates are the best of `--repeats` timings; the machine may be shared, so the load average is
printed with the table. On a busy 2-core machine `--threads 1` is much faster than 2 threads
(OpenMP threads wait on each other when another process holds a core).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from ..envs.pickcube_lite import PickCubeLite
from ..nets import Actor


def _best_rate(fn, batch: int, iters: int, repeats: int) -> float:
    """Best items/s over `repeats` timings of `iters` calls of fn (one call = `batch` items)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        best = max(best, batch * iters / (time.perf_counter() - t0))
    return best


def bench_batch(batch: int, steps: int | None, repeats: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    env_iters = steps or max(50, min(2000, 4_000_000 // batch))
    actions = [torch.rand(batch, 4, generator=gen) * 2 - 1 for _ in range(8)]
    env = PickCubeLite(batch, seed=seed, autoreset=True)
    obs = env.reset(seed=seed)
    i = [0]

    def env_step():
        env.step(actions[i[0] & 7])
        i[0] += 1

    for _ in range(3):
        env_step()
    sync = _best_rate(env_step, batch, env_iters, repeats)
    state = env.snapshot()
    state["elapsed"].copy_(torch.randint(0, env.max_episode_steps, (batch,), generator=gen))
    env.restore(state)
    staggered = _best_rate(env_step, batch, env_iters, repeats)

    actor = Actor(env.obs_dim, env.act_dim)
    pol_iters = steps or max(3, min(500, 400_000 // batch))

    def forward():
        with torch.no_grad():
            actor.act(obs, deterministic=False, generator=gen)

    forward()
    policy = _best_rate(forward, batch, pol_iters, repeats)
    return {"batch": batch, "env_sync": sync, "env_staggered": staggered, "policy": policy,
            "ratio": policy / sync}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="100,5000,80000", help="comma-separated batch sizes")
    p.add_argument("--steps", type=int, default=None, help="calls per timing (default: scaled to the batch)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    header = f"{'batch':>7} | {'env M steps/s':>13} | {'staggered':>9} | {'policy M states/s':>17} | {'env/policy time':>15}"
    print(header)
    print("-" * len(header))
    for b in batches:
        r = bench_batch(b, args.steps, args.repeats)
        print(f"{b:>7} | {r['env_sync'] / 1e6:>13.2f} | {r['env_staggered'] / 1e6:>9.2f} | "
              f"{r['policy'] / 1e6:>17.3f} | {r['ratio']:>15.3f}", flush=True)


if __name__ == "__main__":
    main()
