"""Benchmark: a newcomer's first run, measured in this machine's own unit of speed.

`python -m engine.bench.firstrun [--tiny] [--skip-pretrain | --skip-headline]` prints, in one run:

- the unit: the time of 256 CleanRL-style PPO minibatch steps (3x256 Tanh actor and critic,
  minibatch 800, one torch thread: `engine.bench.ppo_iter.cleanrl_minibatch_step`), measured
  before and after the two runs below (the unit is their mean: on a shared machine it drifts);
- pretraining from scratch: `engine.train.pretrain.run_pretrain` on pickcube-lite with its real
  configuration and seed 0 (what `playground pretrain` does), into a temporary directory;
- the headline run: the `online-mc16-awr` preset as `playground run online-mc16-awr` resolves it
  (its `start` / `optimal` roles from the env's ladder: the built one, else the shipped one),
  through `engine.bench.headline.run` (the Finetuner with a per-phase split);
- both ratios (wall time / unit), beside process-CPU ratios (steadier when others share the
  machine). Targets: pretraining <= 12 units; the headline's 5-minute budget is about 27 units
  on the machine the first-run issue was measured on (unit 11.1 s).

`--tiny` shrinks every part to a smoke-test size (seconds); its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

from .. import checkpoints as ck
from ..config.schema import RunConfig
from ..runtime import set_threads
from . import headline
from .ppo_iter import HP, RefAgent, cleanrl_minibatch_step
from ..train.pretrain import run_pretrain

ENV = "pickcube-lite"
UNIT_STEPS, UNIT_MINIBATCH = 256, 800
PRETRAIN_TARGET_UNITS = 12.0
HEADLINE_BUDGET_UNITS = 300.0 / 11.1

TINY_PRETRAIN = dict(num_envs=8, num_steps=8, total_timesteps=128, num_minibatches=2, update_epochs=1,
                     num_eval_envs=4, critic_episodes=8, critic_epochs=1)
TINY_HEADLINE = dict(num_envs=4, num_steps=4, total_timesteps=16, update_epochs=1, num_minibatches=2, mc_samples=2,
                     num_eval_envs=4)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_unit(steps: int = UNIT_STEPS, minibatch: int = UNIT_MINIBATCH, obs_dim: int = 21, act_dim: int = 4,
              seed: int = 0) -> tuple[float, float]:
    """(wall s, CPU s) of `steps` CleanRL-style PPO minibatch steps on random data of pickcube-lite's sizes
    (21-D observations, 4-D actions), after one warm-up step, always on ONE torch thread (the unit's
    definition; the runs it is compared with may use more, see engine.runtime)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _time_unit(steps, minibatch, obs_dim, act_dim, seed)
    finally:
        torch.set_num_threads(threads)


def _time_unit(steps: int, minibatch: int, obs_dim: int, act_dim: int, seed: int) -> tuple[float, float]:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    agent = RefAgent(obs_dim, act_dim)
    opt = torch.optim.Adam(agent.parameters(), lr=HP["learning_rate"], eps=1e-5)
    n = minibatch * 8
    obs, act = torch.randn(n, obs_dim, generator=g), torch.randn(n, act_dim, generator=g)
    logp, adv, ret = -torch.rand(n, generator=g) * 4, torch.randn(n, generator=g), torch.rand(n, generator=g)
    hp = {**HP, "target_kl": None}
    batches = [torch.randperm(n, generator=g)[:minibatch] for _ in range(8)]
    cleanrl_minibatch_step(agent, opt, obs, act, logp, adv, ret, batches[0], hp)
    t, c = time.perf_counter(), time.process_time()
    for i in range(steps):
        cleanrl_minibatch_step(agent, opt, obs, act, logp, adv, ret, batches[i % 8], hp)
    return time.perf_counter() - t, time.process_time() - c


def time_pretrain(overrides: dict, out=print) -> dict:

    with tempfile.TemporaryDirectory(prefix="firstrun-pretrain-") as root:
        t, c = time.perf_counter(), time.process_time()
        index = run_pretrain(ENV, seed=0, root=Path(root), **overrides)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    pre = index.get("pretrain", {})
    roles = index.get("roles", {})
    out(f"pretraining ({ENV} from scratch, seed 0): {wall:.1f}s wall, {cpu:.1f} CPU-s; "
        f"{pre.get('iterations_run')} PPO iterations, {pre.get('env_steps', 0):,} env steps; roles "
        + ", ".join(f"{r}@{e.get('iteration')}" + (f" (det SR {e['det_sr']:.2f})" if "det_sr" in e else "")
                    for r, e in roles.items()))
    return {"wall_s": wall, "cpu_s": cpu, "iterations": pre.get("iterations_run"), "env_steps": pre.get("env_steps"),
            "roles": {r: {k: e.get(k) for k in ("iteration", "det_sr", "stoch_sr")} for r, e in roles.items()}}


def headline_cfg(tiny: bool) -> RunConfig:
    """The preset as `playground run` loads it, from the env's ladder (none when it has no ladder)."""
    return headline.headline_config("auto", ENV, **(TINY_HEADLINE if tiny else {}))


def run(*, tiny: bool = False, pretrain: bool = True, head: bool = True, out=print) -> dict:
    unit_steps, unit_mb = (8, 64) if tiny else (UNIT_STEPS, UNIT_MINIBATCH)
    out(f"first-run bench on {cpu_name()} ({os.cpu_count()} CPUs), torch {torch.__version__}, "
        f"threads {headline.thread_label()} (the unit: 1), load avg {os.getloadavg()[0]:.2f}{' [--tiny: numbers mean nothing]' if tiny else ''}")
    u1 = time_unit(unit_steps, unit_mb)
    out(f"unit before: {unit_steps} CleanRL-style PPO minibatch steps (3x256 actor+critic, minibatch {unit_mb}): "
        f"{u1[0]:.2f}s wall, {u1[1]:.2f} CPU-s")
    res: dict = {"cpu": cpu_name(), "tiny": tiny}
    if pretrain:
        res["pretrain"] = time_pretrain(TINY_PRETRAIN if tiny else {}, out=out)
    if head:
        cfg = headline_cfg(tiny)
        source = ck.read_index(ENV).get("source") if cfg.checkpoint != "none" else "none (no ladder)"
        out(f"headline run (`playground run {headline.PRESET}`, ladder: {source}):")
        h = headline.run(cfg, out=lambda s: out("  " + s))
        res["headline"] = {"wall_s": h["wall_s"], "cpu_s": h["cpu_s"], "final_sr": h["final_sr"],
                           "iterations": h["iterations"], "ladder": source, "phases": h["phases"]}
    u2 = time_unit(unit_steps, unit_mb)
    out(f"unit after: {u2[0]:.2f}s wall, {u2[1]:.2f} CPU-s")
    unit, unit_cpu = (u1[0] + u2[0]) / 2, (u1[1] + u2[1]) / 2
    res.update(unit_s=unit, unit_cpu_s=unit_cpu, unit_before_s=u1[0], unit_after_s=u2[0])
    out(f"unit (mean): {unit:.2f}s wall, {unit_cpu:.2f} CPU-s")
    if pretrain:
        p = res["pretrain"]
        res["ratio_pretrain"], res["ratio_pretrain_cpu"] = p["wall_s"] / unit, p["cpu_s"] / unit_cpu
        verdict = "PASS" if res["ratio_pretrain"] <= PRETRAIN_TARGET_UNITS else "MISS"
        out(f"ratio pretraining / unit: {res['ratio_pretrain']:.1f} wall, {res['ratio_pretrain_cpu']:.1f} CPU "
            f"(target <= {PRETRAIN_TARGET_UNITS:g}: {verdict})")
    if head:
        h = res["headline"]
        res["ratio_headline"], res["ratio_headline_cpu"] = h["wall_s"] / unit, h["cpu_s"] / unit_cpu
        out(f"ratio headline / unit: {res['ratio_headline']:.1f} wall, {res['ratio_headline_cpu']:.1f} CPU "
            f"(5 minutes on the issue's machine, unit 11.1 s: {HEADLINE_BUDGET_UNITS:.0f})")
    out(f"load avg at end {os.getloadavg()[0]:.2f}")
    return res


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.firstrun", description=__doc__.split("\n")[0])
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the numbers mean nothing)")
    p.add_argument("--skip-pretrain", action="store_true", help="do not time pretraining")
    p.add_argument("--skip-headline", action="store_true", help="do not time the headline run")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads for the runs (0 = the engine's default: auto, the idle cores; engine.runtime); the unit always uses 1")
    a = p.parse_args(argv)
    set_threads(a.threads)
    return run(tiny=a.tiny, pretrain=not a.skip_pretrain, head=not a.skip_headline)


if __name__ == "__main__":
    main()
