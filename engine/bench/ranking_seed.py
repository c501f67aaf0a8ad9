"""Benchmark: `playground analyze ranking --protocol seed` in this machine's unit of speed.

The unit is engine.bench.firstrun's (256 CleanRL-style PPO minibatch steps on one thread), measured
before and after the analysis (their mean: on a shared machine it drifts). Prints the analysis'
wall and process-CPU time, both as ratios to the unit, and its phases. Default sizes are the ones
docs/results.md reports (64 states, K 8, M 10, 20 rollouts per pair with the M-scaling table, IQL
capped at 2,000 steps); `--tiny` runs a seconds-long smoke version whose numbers mean nothing.

    python -m engine.bench.ranking_seed [--tiny] [--states N]
"""
from __future__ import annotations

import argparse
import os
import time

from ..analysis.ranking_seed import SeedProtocol, run_seed_ranking
from .firstrun import UNIT_MINIBATCH, UNIT_STEPS, time_unit

FULL = dict(states=64, m_scaling=True, iql_max_steps=2000)
TINY = dict(policy="none", states=4, K=3, M=2, eval_episodes=4, train_episodes=4, iql_taus=(0.5,), iql_max_steps=4,
            critic_epochs=1, nn_epochs=1)


def run(*, tiny: bool = False, states: int | None = None, out=print) -> dict:
    unit_steps, unit_mb = (8, 64) if tiny else (UNIT_STEPS, UNIT_MINIBATCH)
    sizes = dict(TINY if tiny else FULL)
    if states is not None:
        sizes["states"] = states
    note = " [--tiny: numbers mean nothing]" if tiny else ""
    out(f"seed-protocol ranking bench, load avg {os.getloadavg()[0]:.2f}{note}")
    u1 = time_unit(unit_steps, unit_mb)
    t, c = time.perf_counter(), time.process_time()
    res = run_seed_ranking(SeedProtocol(**sizes))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    u2 = time_unit(unit_steps, unit_mb)
    unit, unit_cpu = (u1[0] + u2[0]) / 2, (u1[1] + u2[1]) / 2
    out(f"unit (mean of before/after): {unit:.2f}s wall, {unit_cpu:.2f} CPU-s")
    out(f"analysis: {wall:.1f}s wall, {cpu:.1f} CPU-s, {res['env_steps']:,} env steps; phases {res['timings']}")
    out(f"ratio analysis / unit: {wall / unit:.1f} wall, {cpu / unit_cpu:.1f} CPU")
    out("rho: " + ", ".join(f"{k} {v:.3f}" for k, v in res["rho"].items() if v is not None))
    return {"unit_s": unit, "unit_cpu_s": unit_cpu, "wall_s": wall, "cpu_s": cpu, "ratio": wall / unit,
            "ratio_cpu": cpu / unit_cpu, "rho": res["rho"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m engine.bench.ranking_seed", description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a smoke run: tiny sizes, numbers mean nothing")
    ap.add_argument("--states", type=int, default=None, help="states (default 64)")
    a = ap.parse_args(argv)
    return run(tiny=a.tiny, states=a.states)


if __name__ == "__main__":
    main()
