"""Benchmark (c): wall time of the seed's headline run, online MC16 AWR, with a per-phase split.

`python -m engine.bench.headline [--quick]` runs `engine.train.finetune.Finetuner(cfg).run()`
with the seed's best configuration (README "Best Configurations", Online (oracle) MC16 AWR) as
the `online-mc16-awr` preset gives it (10 iterations of 100 envs x 50 steps, MC16 re-rollouts
with the optimal policy, 200 epochs x 5 minibatches, gamma 0.8, beta 0.5, ...; command-line
flags override single keys)

on pickcube-lite and prints the wall time against the 5-minute target, with the time spent in
each phase: collect (`engine.train.rollout.collect`), MC (`Finetuner.advantages`: the snapshot
concatenation plus `engine.algos.mc.mc_estimate`, shown separately), update
(`Finetuner.update`: AWR), eval (`Finetuner.evaluate`, 11 evaluations) and other (setup, rows).

Checkpoints: with `--checkpoint auto` (the default) the ladder's `start` policy is finetuned and
re-rollouts use `optimal` when the env's ladder (built, or shipped) names both; otherwise fresh
networks ('none'). The weights matter to MC only through episode lengths: a branch ends at
success or at the episode's time limit, so states visited early in an episode cost the most. With
the ladder built (start det SR ~0.4, optimal sampling its actions) MC ran ~4.3M live steps per
iteration against ~4.0M for fresh networks (never succeed, visited states spread over 0..49).

`--quick` runs one iteration (5,000 steps) and projects the full run as
setup + 11 evaluations + 10 x (collect + MC + update). No run directory is written (checkpoint
saving, about a few ms per iteration, is not timed).

Every phase is timed in wall and in process-CPU seconds. Threads are the engine's default (auto:
the idle cores, `engine.runtime`) unless `--threads N`; at `--threads 1` the CPU seconds are about
the wall time on an otherwise idle core, and with more threads the CPU seconds also count the
time OpenMP threads spend waiting on each other.

The phase timers wrap the Finetuner's methods in a subclass and swap the `collect` and
`mc_estimate` names the loop looks up (in engine.train.finetune's namespace) for timed wrappers,
for this process only.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import torch

from .. import checkpoints as ck
from ..algos import mc as mc_mod
from ..config.schema import RunConfig
from ..runtime import set_threads, threads_mode
from ..train import finetune as ft_mod
from ..config.loading import load_config

TARGET_S = 300.0


def thread_label() -> str:
    mode = threads_mode()
    return "auto (the idle cores, re-decided every iteration)" if mode == "auto" else str(mode)
PRESET = "online-mc16-awr"


def headline_config(checkpoint: str = "auto", env: str = "pickcube-lite", **overrides) -> RunConfig:
    """The headline preset's RunConfig; checkpoint 'auto' = ladder roles start/optimal when the
    env's ladder (built, or shipped) has both, else 'none'."""

    if checkpoint == "auto":
        index = ck.read_index(env)
        roles = index["roles"]
        have = all(r in roles and (Path(index["dir"]) / roles[r]["file"]).is_file() for r in ("start", "optimal"))
        start, optimal = ("start", "optimal") if have else ("none", "none")
    else:
        start = optimal = checkpoint
    base = load_config(PRESET, {}, env=env).to_dict()
    return RunConfig(**{**base, "checkpoint": start, "optimal_checkpoint": optimal,
                        **{k: v for k, v in overrides.items() if v is not None}})


class _Timers:
    """Wall and process-CPU seconds per named phase (CPU time stays meaningful on a shared machine)."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.s[name] += time.perf_counter() - t0
            self.cpu[name] += time.process_time() - c0
            self.n[name] += 1

    def wrap(self, name: str, fn):
        def timed(*a, **kw):
            with self(name):
                return fn(*a, **kw)
        return timed


class TimedFinetuner(ft_mod.Finetuner):
    """The lead's Finetuner with timers around its phases (behaviour unchanged)."""

    timers: _Timers

    def advantages(self, ro):
        with self.timers("mc"):
            return super().advantages(ro)

    def update(self, b):
        with self.timers("update"):
            return super().update(b)

    def evaluate(self):
        with self.timers("eval"):
            return super().evaluate()


@contextlib.contextmanager
def _patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def run(cfg: RunConfig | None = None, *, quick: bool = False, out=print) -> dict:
    cfg = cfg or headline_config()
    full_iters = cfg.online_iterations
    if quick:
        cfg = RunConfig(**{**cfg.to_dict(), "total_timesteps": cfg.batch_size})
    timers = _Timers()
    out(f"headline bench: online MC{cfg.mc_samples} AWR on {cfg.env}: {cfg.num_envs} envs x {cfg.num_steps} steps, "
        f"{cfg.online_iterations} iteration(s) of {full_iters}, update_epochs {cfg.update_epochs} x "
        f"{cfg.num_minibatches} minibatches, gamma {cfg.gamma}, beta {cfg.awr_beta}, checkpoint {cfg.checkpoint!r}, "
        f"rollout policy {cfg.optimal_checkpoint!r}; torch threads {thread_label()}, "
        f"load avg {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    def on_row(row: dict) -> None:
        if row.get("phase") == "initial":
            out(f"  initial eval: sr {row['sr']:.3f} at {row['wall_s']:.1f}s")
            return
        out(f"  iteration {row['iteration']}: sr {row['sr']:.3f}, env steps {row['env_steps']:,} "
            f"(MC {row.get('mc_env_steps', 0):,}), iter {row.get('iter_s', 0):.1f}s, wall {row['wall_s']:.1f}s")

    t0, c0 = time.perf_counter(), time.process_time()
    with _patched(ft_mod, "collect", timers.wrap("collect", ft_mod.collect)), \
            _patched(ft_mod, "mc_estimate", timers.wrap("mc_estimate", mc_mod.mc_estimate)):
        with timers("setup"):
            f = TimedFinetuner(cfg, on_row=on_row)
            f.timers = timers
        try:
            status = f.run()
        finally:
            f.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    s = dict(timers.s)
    phases = {"setup": s.get("setup", 0.0), "collect": s.get("collect", 0.0), "mc": s.get("mc", 0.0),
              "update": s.get("update", 0.0), "eval": s.get("eval", 0.0)}
    phases["other"] = wall - sum(phases.values())
    cpu_phases = {k: timers.cpu.get(k, 0.0) for k in ("setup", "collect", "mc", "update", "eval")}
    cpu_phases["other"] = cpu - sum(cpu_phases.values())
    iters = max(1, cfg.online_iterations)
    res = {"status": status, "iterations": cfg.online_iterations, "wall_s": wall, "cpu_s": cpu, "phases": phases,
           "cpu_phases": cpu_phases,
           "mc_estimate_s": s.get("mc_estimate", 0.0), "env_steps": f.env_steps, "final_sr": f.last_eval.get("sr"),
           "load_avg_end": os.getloadavg()[0]}
    per_iter = {k: phases[k] / iters for k in ("collect", "mc", "update")}
    eval_each = phases["eval"] / max(1, timers.n["eval"])
    projected = phases["setup"] + (full_iters + 1) * eval_each + full_iters * sum(per_iter.values()) + phases["other"]
    res["projected_full_s"] = projected if quick else wall
    cpu_iter = sum(cpu_phases[k] for k in ("collect", "mc", "update")) / iters
    cpu_eval_each = cpu_phases["eval"] / max(1, timers.n["eval"])
    res["projected_full_cpu_s"] = (cpu_phases["setup"] + (full_iters + 1) * cpu_eval_each + full_iters * cpu_iter
                                   + cpu_phases["other"]) if quick else cpu

    out(f"wall time {wall:.1f}s ({cpu:.1f} CPU-s) for {cfg.online_iterations} iteration(s), status {status}, "
        f"final sr {res['final_sr']:.3f}, env steps {f.env_steps:,} (MC re-rollouts included); torch threads "
        f"used {'/'.join(map(str, f.threads.history)) or f.threads.current}")
    res["threads"] = list(f.threads.history)
    out("per phase (wall total, share, CPU-s, per iteration):")
    for k in ("setup", "collect", "mc", "update", "eval", "other"):
        extra = f"  {cpu_phases[k]:7.1f} CPU-s"
        if k in per_iter:
            extra += f"  {per_iter[k]:.2f}s/iteration"
        if k == "mc":
            extra += f"  (of which mc_estimate {res['mc_estimate_s']:.1f}s)"
        if k == "eval":
            extra += f"  {timers.n['eval']} evaluations, {eval_each:.2f}s each"
        out(f"  {k:8s} {phases[k]:7.1f}s  {100 * phases[k] / wall:5.1f}%{extra}")
    verdict = "PASS" if res["projected_full_s"] <= TARGET_S else "MISS"
    cpu_verdict = "PASS" if res["projected_full_cpu_s"] <= TARGET_S else "MISS"
    label = f"projected full run ({full_iters} iterations)" if quick else "full run"
    out(f"{label}: {res['projected_full_s']:.1f}s wall, {res['projected_full_cpu_s']:.1f} CPU-s; "
        f"target <= {TARGET_S:.0f}s: wall {verdict}, CPU-s {cpu_verdict} (load avg at end {res['load_avg_end']:.2f} on {os.cpu_count()} CPUs)")
    return res


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.headline", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one iteration, then project the 10-iteration run")
    p.add_argument("--checkpoint", default="auto", help="auto (the ladder's start/optimal, built or shipped, else none), none, or a role/path")
    p.add_argument("--env", default="pickcube-lite")
    p.add_argument("--num-envs", type=int, default=None, help="default: the preset's")
    p.add_argument("--num-steps", type=int, default=None, help="default: the preset's")
    p.add_argument("--total-timesteps", type=int, default=None, help="default: the preset's")
    p.add_argument("--update-epochs", type=int, default=None, help="default: the preset's")
    p.add_argument("--mc-samples", type=int, default=None, help="default: the preset's")
    p.add_argument("--num-eval-envs", type=int, default=None, help="default: the preset's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0 = the engine's default: auto, the idle cores; engine.runtime)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    cfg = headline_config(a.checkpoint, a.env, num_envs=a.num_envs, num_steps=a.num_steps,
                          total_timesteps=a.total_timesteps, update_epochs=a.update_epochs, mc_samples=a.mc_samples,
                          num_eval_envs=a.num_eval_envs, seed=a.seed)
    return run(cfg, quick=a.quick)


if __name__ == "__main__":
    main()
