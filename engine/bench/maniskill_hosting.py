"""Benchmark: ManiSkill CPU envs hosted one per worker process (the old layout) against several
per process, at most one process per core (the default now).

`python -m engine.bench.maniskill_hosting [--envs 6] [--steps 60] [--task PickCube-v1] [--procs P]`
builds `--envs` PickCube-v1 envs twice in one run, first with one process per env ("before"),
then with `--procs` processes (default: one per usable core, as `ManiSkillEnv` does), and prints
for each: processes, start time, env steps/s of a batched random-action loop (wall clock, and
per CPU-second of the workers and this process: on a shared machine more processes simply take
a larger share of the cores), and the resident memory of the worker processes; then the ratios
after/before. Also prints one process's memory
with 1 env and with all `--envs` envs in it, which is what `engine.config.limits` charges per
process and per hosted env.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from ..envs.maniskill import ManiSkillEnv
from ..runtime import default_procs


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        except OSError:
            pass
    return total_kib / 1024


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by `pids`."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def measure(task: str, envs: int, procs: int, steps: int) -> dict:
    t0 = time.perf_counter()
    env = ManiSkillEnv(task, envs, seed=0, procs=procs, in_process=False)
    started = time.perf_counter() - t0
    try:
        gen = torch.Generator().manual_seed(0)
        actions = torch.rand(steps, envs, env.act_dim, generator=gen) * 2 - 1
        env.reset(seed=0)
        env.step(actions[0])  # warm-up
        pids = env.worker_pids
        c0, t0, p0 = cpu_s(pids), time.perf_counter(), time.process_time()
        for a in actions[1:]:
            env.step(a)
        wall = time.perf_counter() - t0
        cpu = cpu_s(pids) - c0 + time.process_time() - p0
        n = envs * (steps - 1)
        return {"procs": len(pids), "start_s": started, "steps_per_s": n / wall, "steps_per_cpu_s": n / max(cpu, 1e-9),
                "rss_mib": rss_mib(pids)}
    finally:
        env.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.bench.maniskill_hosting", description=__doc__.splitlines()[0])
    p.add_argument("--task", default="PickCube-v1")
    p.add_argument("--envs", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--procs", type=int, default=0, help="processes for 'after' (0: one per usable core)")
    a = p.parse_args(argv)
    after_procs = a.procs or default_procs(a.envs)
    print(f"{a.envs} x {a.task}, {a.steps} steps, load average {os.getloadavg()[0]:.2f}")
    rows = {"before (1 env/process)": measure(a.task, a.envs, a.envs, a.steps),
            f"after ({after_procs} processes)": measure(a.task, a.envs, after_procs, a.steps)}
    print(f"{'layout':<26}{'procs':>6}{'start s':>9}{'steps/s':>9}{'steps/CPU-s':>12}{'RSS MiB':>9}")
    for name, r in rows.items():
        print(f"{name:<26}{r['procs']:>6}{r['start_s']:>9.1f}{r['steps_per_s']:>9.0f}{r['steps_per_cpu_s']:>12.0f}"
              f"{r['rss_mib']:>9.0f}")
    b, f = rows.values()
    print(f"after/before: steps/s x{f['steps_per_s'] / b['steps_per_s']:.2f}, steps per CPU-second "
          f"x{f['steps_per_cpu_s'] / b['steps_per_cpu_s']:.2f}, memory x{f['rss_mib'] / b['rss_mib']:.2f}"
          " (on a shared machine more processes take a larger share of the cores: compare steps per CPU-second)")
    one = measure(a.task, 1, 1, 5)["rss_mib"]
    many = measure(a.task, a.envs, 1, 5)["rss_mib"]
    print(f"one process: {one:.0f} MiB with 1 env, {many:.0f} MiB with {a.envs} envs "
          f"({(many - one) / max(1, a.envs - 1):.1f} MiB per extra env)")


if __name__ == "__main__":
    main()
