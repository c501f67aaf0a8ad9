"""What a run may ask of this machine: worker processes per ManiSkill env batch, and an estimate
of a run's memory checked before anything is written.

- `default_procs(n)` (defined in engine.runtime, which the envs read it from): processes hosting a batch of
  `n` CPU ManiSkill envs: one per usable core at most (`$PLAYGROUND_MANISKILL_PROCS` overrides); each hosts
  several envs (engine/envs/maniskill/cpu_pool.py).
- `check_sweep_size(points, seeds)`: at most `MAX_SWEEP_RUNS` runs per sweep; `check_parallel(cfgs,
  n)`: the `n` largest of a local sweep's runs must fit the memory together.
- `estimate_memory(cfg)`: the run's peak resident memory in bytes, term by term.
- `check_fits(cfg)`: a `LimitError` (one line: what the run needs, what this machine has, and
  the largest `num_envs` that would fit) when the estimate exceeds the memory available now
  (psutil's `available`: MemAvailable on Linux, what the kernel reports on macOS and Windows;
  capped by a cgroup limit; `$PLAYGROUND_MEM_AVAILABLE_MIB` overrides it, for tests and for users
  who know better).

The constants were measured on the 2-core, 24 GiB development machine (engine/bench/maniskill_hosting.py
prints the ManiSkill ones): a ManiSkill PickCube-v1 worker process holds about 430 MiB, each
further env it hosts about 2-3 MiB; the training worker with torch about 300 MiB. The terms that
grow with the config (transitions kept per iteration, Monte-Carlo branches, env state) are
counted with their tensor sizes. The estimate aims to be right within a factor of about 1.5: it
exists to refuse runs that cannot fit at all (1e9 envs, 100 ManiSkill processes), not to pack a
machine to its last MiB.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from ..errors import UserError
from .. import settings
from ..runtime import MANISKILL_PROCS_ENV, default_procs  # noqa: F401 (re-exported: the memory budget uses it)
from ..runtime import affinity_cores as usable_cores  # noqa: F401 (re-exported: walltime)
from .schema import RunConfig

PROCS_ENV = MANISKILL_PROCS_ENV
MEM_ENV = "PLAYGROUND_MEM_AVAILABLE_MIB"

MIB = 1 << 20
WORKER_BASE = 300 * MIB            # python + torch + networks + TensorBoard writer
MANISKILL_PROCESS = 430 * MIB      # one ManiSkill worker process with its first env
MANISKILL_ENV = 3 * MIB            # each further env (scene) in the same process
MANISKILL_SNAPSHOT = 16 * 1024     # one env's state dict kept for MC re-rollouts (numpy arrays in dicts)
LITE_ENV = 512                     # one pickcube-lite env: state, counters, RNG key, action buffer
TRANSITION_FLOATS = 64             # obs (42), action (4), log-prob, reward, flags, value, advantage, return
LITE_SNAPSHOT = 512                # one pickcube-lite state kept for MC re-rollouts
MC_BRANCH = 32                     # per MC branch: return, visited-state index, flags, step bookkeeping
MC_MAX_BATCH_LITE = 80_000         # engine/train/finetune.py simulates at most this many lite branches at once


MAX_SWEEP_RUNS = 1000              # runs one sweep (grid points x seeds) or one reproduce row may plan


class LimitError(UserError, ValueError):
    """A run (or sweep) that cannot fit this machine; one line saying what would."""


def check_sweep_size(points: int, seeds: int) -> None:
    """Refuse a sweep of more than MAX_SWEEP_RUNS runs before any of them is planned."""
    if points * seeds > MAX_SWEEP_RUNS:
        raise LimitError(f"a sweep of {points} grid point{'s' if points != 1 else ''} x {seeds} seed"
                         f"{'s' if seeds != 1 else ''} = {points * seeds} runs is more than {MAX_SWEEP_RUNS}: "
                         "split it into smaller sweeps")


@dataclass
class Estimate:
    total: int                 # bytes
    parts: dict[str, int]      # what it is made of

    def describe(self) -> str:
        big = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{name} {gib(v)}" for name, v in big if v > 0)


def gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= (1 << 30) else f"{n / MIB:.0f} MiB"


def _maniskill_pool(n: int) -> int:
    return default_procs(n) * MANISKILL_PROCESS + max(0, n - default_procs(n)) * MANISKILL_ENV


def estimate_memory(cfg: RunConfig) -> Estimate:
    """Peak resident memory of the run's worker (and its env processes), in bytes."""
    maniskill = cfg.env.startswith("maniskill:")
    mc = cfg.estimator == "mc"
    per_state = (2 if cfg.mc_baseline == "mc" else 1) * cfg.mc_samples
    transitions = cfg.num_envs * cfg.num_steps
    branches = transitions * per_state if mc else 0
    parts = {"worker": WORKER_BASE,
             "rollout buffers": transitions * TRANSITION_FLOATS * 4}
    if maniskill:
        envs = _maniskill_pool(cfg.num_envs) + _maniskill_pool(cfg.num_eval_envs)
        if mc:  # re-rollouts run in chunks of num_envs envs (and one smaller last chunk)
            envs += 2 * _maniskill_pool(max(2, cfg.num_envs))
        parts["ManiSkill env processes"] = envs
        parts["MC snapshots"] = transitions * MANISKILL_SNAPSHOT if mc else 0
    else:
        chunk = min(branches, MC_MAX_BATCH_LITE)
        parts["envs"] = (cfg.num_envs + cfg.num_eval_envs + 2 * chunk) * LITE_ENV
        parts["MC snapshots"] = transitions * LITE_SNAPSHOT if mc else 0
    parts["MC branches"] = branches * MC_BRANCH
    return Estimate(sum(parts.values()), parts)


def _cgroup_limit() -> int | None:
    for p in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(p).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < (1 << 60):
            return int(raw)
    return None


def available_memory() -> int | None:
    """Bytes of memory a new run can use now, or None when this machine does not say."""
    mib = settings.get(MEM_ENV)
    if mib is not None:
        return int(mib * MIB)
    avail = None
    try:
        avail = int(psutil.virtual_memory().available)
    except (OSError, RuntimeError, psutil.Error):
        return None
    limit = _cgroup_limit()
    if avail is not None and limit is not None:
        return min(avail, limit)
    return avail


def largest_fitting(cfg: RunConfig, key: str, budget: int) -> int:
    """The largest value of integer `key` (at most its current value) whose estimate fits `budget`; 0 if none."""
    lo, hi = 0, int(getattr(cfg, key))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_memory(replace(cfg, **{key: mid})).total <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_fits(cfg: RunConfig, available: int | None = None) -> Estimate:
    """Raise LimitError when the run's estimated memory exceeds what is available now."""
    est = estimate_memory(cfg)
    if cfg.device != "cpu":
        return est  # networks and envs on a GPU: this CPU-memory estimate does not apply
    avail = available_memory() if available is None else available
    if avail is None or est.total <= avail:
        return est
    fixes = []
    for key in ("num_envs", "mc_samples", "num_eval_envs", "num_steps"):
        best = largest_fitting(cfg, key, avail)
        if best >= 1:
            fixes.append(f"--{key} {best}")
            break
    fix = f"at most {fixes[0]} fits with the other keys as given" if fixes else \
        "even the smallest sizes do not fit: free memory first"
    raise LimitError(f"this run needs about {gib(est.total)} of memory ({est.describe()}) but this machine "
                     f"has {gib(avail)} available: {fix}")


def check_parallel(cfgs: list[RunConfig], parallel: int, available: int | None = None) -> None:
    """Refuse `parallel` runs at once on this machine when the largest `parallel` of them together
    would not fit the memory available now (LimitError naming the --parallel that fits)."""
    avail = available_memory() if available is None else available
    sizes = sorted((estimate_memory(c).total for c in cfgs if c.device == "cpu"), reverse=True)
    if avail is None or not sizes:
        return
    n = min(max(1, int(parallel)), len(sizes))
    need = sum(sizes[:n])
    if need <= avail:
        return
    fits, total = 0, 0
    for size in sizes:
        if total + size > avail:
            break
        total, fits = total + size, fits + 1
    fix = f"--parallel {fits} fits" if fits else "not even one of these runs fits: free memory first"
    raise LimitError(f"{n} runs at once need about {gib(need)} of memory but this machine has {gib(avail)} "
                     f"available: {fix}")
