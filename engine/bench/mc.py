"""Benchmark (a): env steps per second inside the MC-k estimator against a bare policy+env loop.

`python -m engine.bench.mc [--states 5000] [--k 16]` builds `--states` visited states the way a
training iteration does (a `collect` with `keep_states=True` over up to 100 envs), then, in one
process and interleaved `--repeats` times:

- the bare loop: `actor.act(obs)` + `env.step(action)` on one env of B envs for `--bare-steps`
  steps, where B is the estimator's chunk size (min(states x 2k, max_batch)): the cost floor of
  "policy forward + env step" at that batch size;
- the estimator: `engine.algos.mc.mc_estimate` on those states (k Q + k V branches per state),
  with its rollout envs built beforehand (as the training loop's cache keeps them).

It prints both rates and their ratio (target: estimator >= 0.8 x bare). The estimator's rate is
given twice: per LIVE branch step (`MCResult.env_steps`, the useful work: branches that ended
are masked out of the policy forward but still simulated) and per SIMULATED step
(`env_steps_simulated`, what the batched simulator executed). The ratio of record is the live
one. To show which side bounds the loop, the policy forward alone and the env step alone are
timed at the same batch size too. `--policy-rows R` runs every policy forward (in both loops)
in slices of R rows: the fix proposed for the estimator's large-batch forward (see the report).

The machine may be shared: rates are the best of the repeats, and the load average is printed.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Sequence

import torch

from ..algos.mc import RolloutEnvCache, mc_estimate, mc_horizon
from ..envs import make_env
from ..runtime import set_threads
from ..nets import Actor
from ..train.finetune import MC_MAX_BATCH_LITE, load_policy
from ..train.rollout import collect

MAX_BATCH = MC_MAX_BATCH_LITE  # the chunk size the training loop uses for pickcube-lite


def _load_actor(spec: str, env) -> Actor:
    if not spec or spec.lower() == "none":
        return Actor(env.obs_dim, env.act_dim)
    return load_policy(spec, env, what="bench policy")


def make_states(env_id: str, num_states: int, actor: Actor, *, seed: int, gen: torch.Generator):
    """`num_states` visited states (snapshots, obs, actions) from one `collect` over up to 100 envs."""
    n_envs = max(1, min(100, num_states))
    steps = math.ceil(num_states / n_envs)
    env = make_env(env_id, n_envs, seed=seed, reward_mode="sparse", autoreset=True)
    try:
        obs = env.reset(seed=seed)
        ro, _ = collect(env, actor, obs, steps, generator=gen, keep_states=True)
    finally:
        env.close()
    states = ro.all_states()
    idx = torch.arange(num_states)
    return states.select(idx), ro.flat(ro.obs)[:num_states], ro.flat(ro.actions)[:num_states]


@torch.no_grad()
def time_bare_loop(env, policy, min_steps: int, gen: torch.Generator, what: str = "both",
                   min_seconds: float = 1.0) -> tuple[float, float]:
    """(wall, cpu) steps per second of `policy forward + env step` (or one of them alone) at
    env.num_envs, over at least `min_steps` steps and `min_seconds` of wall time."""
    n = env.num_envs
    obs = env.reset(seed=1)
    action = policy(obs, generator=gen)
    steps = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        if what in ("both", "policy"):
            action = policy(obs, generator=gen)
        if what in ("both", "env"):
            obs = env.step(action).obs
        steps += 1
        if steps >= min_steps and time.perf_counter() - t0 >= min_seconds:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n * steps / wall, n * steps / max(cpu, 1e-9)


def run(states: int = 5000, k: int = 16, *, env_id: str = "pickcube-lite", gamma: float = 0.8,
        horizon_tol: float = 1e-4, max_batch: int = MAX_BATCH, repeats: int = 2, bare_steps: int = 10,
        min_seconds: float = 1.0, policy_rows: int = 0, checkpoint: str = "none", seed: int = 0,
        components: bool = True, out=print) -> dict:
    """Run benchmark (a); returns the measured numbers (also printed through `out`)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    probe = make_env(env_id, 1, seed=seed)
    actor = _load_actor(checkpoint, probe)
    probe.close()
    st, obs, actions = make_states(env_id, states, actor, seed=seed, gen=gen)

    total = states * 2 * k
    chunk = min(total, max_batch)
    sizes = sorted({min(max_batch, total - s) for s in range(0, total, max_batch)})
    cache = RolloutEnvCache(lambda n: make_env(env_id, n, seed=seed + 17, reward_mode="sparse", autoreset=False))
    for n in sizes:  # built before timing, as the training loop's cache keeps them across iterations
        cache(n)
    bare_env = make_env(env_id, chunk, seed=seed + 29, reward_mode="sparse", autoreset=False)

    def policy(o: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if policy_rows <= 0 or o.shape[0] <= policy_rows:
            return actor.act(o, deterministic=False, generator=generator)
        return torch.cat([actor.act(x, deterministic=False, generator=generator) for x in o.split(policy_rows)])

    out(f"MC estimator bench: env {env_id}, {states} states x 2k (k={k}) = {total} branches, "
        f"chunk {chunk} (max_batch {max_batch}), gamma {gamma}, horizon H={mc_horizon(gamma, horizon_tol)}, "
        f"policy {checkpoint}" + (f" (forward in slices of {policy_rows} rows)" if policy_rows > 0 else "") +
        f", torch threads {torch.get_num_threads()}, load avg {os.getloadavg()[0]:.2f}")
    time_bare_loop(bare_env, policy, 2, gen, min_seconds=0.0)  # warm-up
    bare, bare_cpu, live, live_cpu, sim, wall = [], [], [], [], [], []
    res = None
    for r in range(repeats):
        b, bc = time_bare_loop(bare_env, policy, bare_steps, gen, min_seconds=min_seconds)
        t0, c0 = time.perf_counter(), time.process_time()
        res = mc_estimate(cache, st, obs, actions, policy, k=k, gamma=gamma, horizon_tol=horizon_tol,
                          max_batch=max_batch, generator=gen, compute_v=True)
        dt, dc = time.perf_counter() - t0, max(time.process_time() - c0, 1e-9)
        bare.append(b)
        bare_cpu.append(bc)
        live.append(res.env_steps / dt)
        live_cpu.append(res.env_steps / dc)
        sim.append(res.env_steps_simulated / dt)
        wall.append(dt)
        out(f"  repeat {r + 1}: bare {b:,.0f} steps/s | estimator {dt:.2f}s, {res.env_steps:,} live steps "
            f"({res.env_steps / dt:,.0f}/s), {res.env_steps_simulated:,} simulated "
            f"({res.env_steps_simulated / dt:,.0f}/s) | per CPU-second: bare {bc:,.0f}, estimator {res.env_steps / dc:,.0f}")
    result = {
        "states": states, "k": k, "chunk": chunk, "branches": total,
        "bare_steps_per_s": max(bare), "estimator_live_steps_per_s": max(live),
        "estimator_simulated_steps_per_s": max(sim), "estimator_s": min(wall),
        "bare_steps_per_cpu_s": max(bare_cpu), "estimator_live_steps_per_cpu_s": max(live_cpu),
        "live_steps": res.env_steps, "simulated_steps": res.env_steps_simulated,
        "max_steps_run": res.max_steps_run, "chunks": res.chunks,
    }
    result["ratio_live"] = result["estimator_live_steps_per_s"] / result["bare_steps_per_s"]
    result["ratio_simulated"] = result["estimator_simulated_steps_per_s"] / result["bare_steps_per_s"]
    result["ratio_live_cpu"] = result["estimator_live_steps_per_cpu_s"] / result["bare_steps_per_cpu_s"]
    result["ratio_live_median"] = statistics.median(l / b for l, b in zip(live, bare))
    if components:
        result["policy_only_per_s"] = time_bare_loop(bare_env, policy, bare_steps, gen, "policy", min_seconds)[0]
        result["env_only_per_s"] = time_bare_loop(bare_env, policy, bare_steps, gen, "env", min_seconds)[0]
    bare_env.close()
    cache.close()
    result["load_avg_end"] = os.getloadavg()[0]

    out(f"bare loop (policy forward + env step, batch {chunk}): {result['bare_steps_per_s']:,.0f} steps/s")
    if components:
        out(f"  of which: policy forward alone {result['policy_only_per_s']:,.0f}/s, "
            f"env step alone {result['env_only_per_s']:,.0f}/s")
    out(f"estimator (mc_estimate, best of {repeats}): {result['estimator_live_steps_per_s']:,.0f} live steps/s, "
        f"{result['estimator_simulated_steps_per_s']:,.0f} simulated steps/s ({result['estimator_s']:.2f}s, "
        f"{result['chunks']} chunk(s), longest loop {result['max_steps_run']} steps)")
    verdict = "PASS" if result["ratio_live"] >= 0.8 else "MISS"
    out(f"ratio estimator/bare: {result['ratio_live']:.3f} live (median over repeats "
        f"{result['ratio_live_median']:.3f}; per CPU-second {result['ratio_live_cpu']:.3f}), "
        f"{result['ratio_simulated']:.3f} simulated; target >= 0.8: {verdict} "
        f"(load avg at end {result['load_avg_end']:.2f} on {os.cpu_count()} CPUs)")
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.mc", description=__doc__.split("\n")[0])
    p.add_argument("--states", type=int, default=5000, help="visited states to estimate (100 envs x 50 steps = 5000)")
    p.add_argument("--k", type=int, default=16, help="MC-k branches per Q and per V estimate")
    p.add_argument("--env", default="pickcube-lite")
    p.add_argument("--gamma", type=float, default=0.8)
    p.add_argument("--horizon-tol", type=float, default=1e-4)
    p.add_argument("--max-batch", type=int, default=MAX_BATCH)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--bare-steps", type=int, default=10, help="least steps per bare-loop timing")
    p.add_argument("--min-seconds", type=float, default=1.0, help="least wall time per bare-loop timing")
    p.add_argument("--policy-rows", type=int, default=0,
                   help="run the policy forward in slices of this many rows (0 = one call), in both loops")
    p.add_argument("--checkpoint", default="none", help="policy (role, path or none = fresh network)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0 = the engine's default: auto, the idle cores; engine.runtime)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    return run(a.states, a.k, env_id=a.env, gamma=a.gamma, horizon_tol=a.horizon_tol, max_batch=a.max_batch,
               repeats=a.repeats, bare_steps=a.bare_steps, min_seconds=a.min_seconds, policy_rows=a.policy_rows,
               checkpoint=a.checkpoint, seed=a.seed)


if __name__ == "__main__":
    main()
