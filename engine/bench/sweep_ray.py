"""Benchmark: the Ray backend's overhead against the local backend for the same sweep.

`python -m engine.bench.sweep_ray [--iterations 10] [--parallel 2] [--address HOST:PORT]` runs
one 4-run `pickcube-lite` sweep (2 seeds x 2 gammas, tiny GAE PPO runs, no checkpoint ladder)
with `--backend local`, then the same with `--backend ray` (a local instance on loopback that
the sweep starts and stops, or the cluster at `--address`), each as a `playground sweep`
subprocess in its own runs directory, and prints for each: the wall time of the whole command
and the time from the command's start to the first metrics line in any of its run directories;
then the ratio ray / local of both. Both sides run in this one command, so they see the same
machine load.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NO_LADDER = ["--checkpoint", "none", "--critic_checkpoint", "none", "--optimal_checkpoint", "none",
             "--data_checkpoint", "none"]


def sweep_args(iterations: int, parallel: int) -> list[str]:
    return ["sweep", "gae-ppo", "--env", "pickcube-lite", *NO_LADDER, "--num_envs", "8", "--num_steps", "10",
            "--total_timesteps", str(80 * iterations), "--update_epochs", "1", "--num_minibatches", "2",
            "--num_eval_envs", "8", "--seeds", "0-1", "--grid", "gamma=0.95,0.99", "--parallel", str(parallel),
            "--json"]


def first_metrics_line(runs: Path) -> bool:
    try:
        return any((d / "metrics.jsonl").is_file() and (d / "metrics.jsonl").stat().st_size > 0
                   for d in runs.iterdir())
    except FileNotFoundError:
        return False


def time_sweep(args: list[str], runs: Path, env: dict[str, str]) -> dict[str, float]:
    """Wall time of one `playground sweep` subprocess and its time to the first metrics line."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", "from engine.cli.app import main; main()", *args],
                         env=dict(env, PLAYGROUND_RUNS_DIR=str(runs)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = None
    while p.poll() is None:
        if first is None and first_metrics_line(runs):
            first = time.perf_counter() - t0
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"sweep failed (exit {p.returncode}): {err.strip()[-2000:]}")
    return {"wall_s": wall, "first_metrics_s": first if first is not None else wall}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m engine.bench.sweep_ray", description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=10, help="PPO iterations per run (80 env steps each)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--address", default=None, help="a Ray cluster to use instead of a local instance")
    a = ap.parse_args(argv)
    base = sweep_args(a.iterations, a.parallel)
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-ray-") as tmp:
        env = dict(os.environ, PLAYGROUND_EXPERIMENTS_LOG=str(Path(tmp) / "log.md"),
                   PLAYGROUND_CHECKPOINTS_DIR=str(Path(tmp) / "ck"))
        env.pop("PLAYGROUND_WORKER", None)
        res["local"] = time_sweep(base + ["--backend", "local"], Path(tmp) / "local", env)
        ray = base + ["--backend", "ray"] + (["--address", a.address] if a.address else [])
        res["ray"] = time_sweep(ray, Path(tmp) / "ray", env)
    load = os.getloadavg()[0]
    print(f"4-run sweep, {a.iterations} iterations per run, {a.parallel} at once (load average {load:.1f})")
    print(f"{'backend':8} {'wall s':>8} {'first metrics s':>16}")
    for k, v in res.items():
        print(f"{k:8} {v['wall_s']:8.1f} {v['first_metrics_s']:16.1f}")
    res["ratio_wall"] = res["ray"]["wall_s"] / res["local"]["wall_s"]
    res["ratio_first_metrics"] = res["ray"]["first_metrics_s"] / res["local"]["first_metrics_s"]
    print(f"ratio ray/local: wall {res['ratio_wall']:.2f}, time to first metrics line {res['ratio_first_metrics']:.2f}")
    return res


if __name__ == "__main__":
    main()
