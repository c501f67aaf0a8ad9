"""Benchmark (c): wall time of the seed's headline run, online MC16 AWR, with a per-phase split.

`python -m engine.bench.headline [--quick]` runs `engine.train.finetune.Finetuner(cfg).run()`
with the seed's best configuration (README "Best Configurations", Online (oracle) MC16 AWR):

    regime online, estimator mc, update awr, rollout_policy optimal, num_envs 100, num_steps 50,
    total_timesteps 50,000 (10 iterations), update_epochs 200, mc_samples 16, gamma 0.8,
    awr_beta 0.5, the other keys at their RunConfig defaults (num_minibatches 32, eval every
    iteration on 100 envs, ...)

on pickcube-lite and prints the wall time against the 5-minute target, with the time spent in
each phase: collect (`engine.train.rollout.collect`), MC (`Finetuner.advantages`: the snapshot
concatenation plus `engine.algos.mc.mc_estimate`, shown separately), update
(`Finetuner.update`: AWR), eval (`Finetuner.evaluate`, 11 evaluations) and other (setup, rows).

Checkpoints: with `--checkpoint auto` (the default) the ladder's `start` policy is finetuned and
re-rollouts use `optimal` when `checkpoints/<env>/index.json` names both; otherwise fresh
networks ('none'). Weights change little in the timing, except that a policy that succeeds ends
MC branches early: fresh networks never succeed, so 'none' is the slow case for MC.

`--quick` runs one iteration (5,000 steps) and projects the full run as
setup + 11 evaluations + 10 x (collect + MC + update). No run directory is written (checkpoint
saving, about a few ms per iteration, is not timed).

The phase timers wrap the Finetuner's methods in a subclass and swap the `collect` and
`mc_estimate` names the loop looks up for timed wrappers, for this process only.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import defaultdict
from typing import Sequence

import torch

from .. import checkpoints as ck
from ..algos import mc as mc_mod
from ..config.schema import RunConfig
from ..train import finetune as ft_mod

TARGET_S = 300.0
HEADLINE = dict(regime="online", estimator="mc", update="awr", rollout_policy="optimal", num_envs=100, num_steps=50,
                total_timesteps=50_000, update_epochs=200, mc_samples=16, gamma=0.8, awr_beta=0.5)


def headline_config(checkpoint: str = "auto", env: str = "pickcube-lite", **overrides) -> RunConfig:
    """The headline RunConfig; checkpoint 'auto' = ladder roles start/optimal when built, else 'none'."""
    if checkpoint == "auto":
        roles = ck.read_index(env).get("roles", {})
        have = all(r in roles and (ck.ladder_dir(env) / roles[r]["file"]).is_file() for r in ("start", "optimal"))
        start, optimal = ("start", "optimal") if have else ("none", "none")
    else:
        start = optimal = checkpoint
    return RunConfig(**{**HEADLINE, "env": env, "checkpoint": start, "optimal_checkpoint": optimal, **overrides})


class _Timers:
    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.s[name] += time.perf_counter() - t0
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
        f"rollout policy {cfg.optimal_checkpoint!r}; torch threads {torch.get_num_threads()}, "
        f"load avg {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    def on_row(row: dict) -> None:
        if row.get("phase") == "initial":
            out(f"  initial eval: sr {row['sr']:.3f} at {row['wall_s']:.1f}s")
            return
        out(f"  iteration {row['iteration']}: sr {row['sr']:.3f}, env steps {row['env_steps']:,} "
            f"(MC {row.get('mc_env_steps', 0):,}), iter {row.get('iter_s', 0):.1f}s, wall {row['wall_s']:.1f}s")

    t0, c0 = time.perf_counter(), time.process_time()
    with _patched(ft_mod, "collect", timers.wrap("collect", ft_mod.collect)), \
            _patched(mc_mod, "mc_estimate", timers.wrap("mc_estimate", mc_mod.mc_estimate)):
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
    iters = max(1, cfg.online_iterations)
    res = {"status": status, "iterations": cfg.online_iterations, "wall_s": wall, "cpu_s": cpu, "phases": phases,
           "mc_estimate_s": s.get("mc_estimate", 0.0), "env_steps": f.env_steps, "final_sr": f.last_eval.get("sr"),
           "load_avg_end": os.getloadavg()[0]}
    per_iter = {k: phases[k] / iters for k in ("collect", "mc", "update")}
    eval_each = phases["eval"] / max(1, timers.n["eval"])
    projected = phases["setup"] + (full_iters + 1) * eval_each + full_iters * sum(per_iter.values()) + phases["other"]
    res["projected_full_s"] = projected if quick else wall

    out(f"wall time {wall:.1f}s ({cpu:.1f} CPU-s) for {cfg.online_iterations} iteration(s), status {status}, "
        f"final sr {res['final_sr']:.3f}, env steps {f.env_steps:,} (MC re-rollouts included)")
    out("per phase (total, per iteration):")
    for k in ("setup", "collect", "mc", "update", "eval", "other"):
        extra = ""
        if k in per_iter:
            extra = f"  {per_iter[k]:.2f}s/iteration"
        if k == "mc":
            extra += f"  (of which mc_estimate {res['mc_estimate_s']:.1f}s)"
        if k == "eval":
            extra = f"  {timers.n['eval']} evaluations, {eval_each:.2f}s each"
        out(f"  {k:8s} {phases[k]:7.1f}s  {100 * phases[k] / wall:5.1f}%{extra}")
    verdict = "PASS" if res["projected_full_s"] <= TARGET_S else "MISS"
    label = f"projected full run ({full_iters} iterations)" if quick else "full run"
    out(f"{label}: {res['projected_full_s']:.1f}s; target <= {TARGET_S:.0f}s: {verdict} "
        f"(load avg at end {res['load_avg_end']:.2f})")
    return res


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.headline", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one iteration, then project the 10-iteration run")
    p.add_argument("--checkpoint", default="auto", help="auto (ladder start/optimal if built, else none), none, or a role/path")
    p.add_argument("--env", default="pickcube-lite")
    p.add_argument("--num-envs", type=int, default=HEADLINE["num_envs"])
    p.add_argument("--num-steps", type=int, default=HEADLINE["num_steps"])
    p.add_argument("--total-timesteps", type=int, default=HEADLINE["total_timesteps"])
    p.add_argument("--update-epochs", type=int, default=HEADLINE["update_epochs"])
    p.add_argument("--mc-samples", type=int, default=HEADLINE["mc_samples"])
    p.add_argument("--num-eval-envs", type=int, default=RunConfig.num_eval_envs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cfg = headline_config(a.checkpoint, a.env, num_envs=a.num_envs, num_steps=a.num_steps,
                          total_timesteps=a.total_timesteps, update_epochs=a.update_epochs, mc_samples=a.mc_samples,
                          num_eval_envs=a.num_eval_envs, seed=a.seed)
    return run(cfg, quick=a.quick)


if __name__ == "__main__":
    main()
