"""Process-wide runtime settings: how many CPU threads torch may use, chosen from the idle cores.

Measured on this 2-core machine (`python -m engine.bench.threads` prints the ratios):
- On an otherwise idle machine two torch threads run the headline run's AWR update (1,000 Adam
  steps of 1,000 samples on 3x256 MLPs) and its MC re-rollouts ~1.7-1.9x faster than one.
- As soon as another process keeps the other core busy, two threads are ~2x SLOWER than one:
  OpenMP threads spin-wait on a core they do not get.
So a fixed count is wrong either way. `PLAYGROUND_THREADS=auto` (the default) uses as many
threads as there are idle cores: a `ThreadGovernor` measures, from the machine's CPU times
(psutil: /proc/stat on Linux, the kernel's counters on macOS and Windows), how many cores
other processes kept busy (all CPU time minus this process's own) since its last look, and
sets torch's thread count to the idle cores left, between 1 and `AUTO_MAX_THREADS` and never
above the cores this process may use (affinity, cgroup `cpu.max` quota, `OMP_NUM_THREADS`,
which Ray sets to a task's CPUs). The training loops call `adjust()` once per iteration, so a
run that started alone gives a core back when a second run starts. The hot loops (AWR and PPO
minibatches, MC re-rollout steps, PPO pretraining) also call `tick()`, which re-decides at most
once a second, so a process that starts mid-iteration costs this one at most about a second of
threads spinning on a core they no longer get (measured: an iteration that took 8 s ran 41 s
when another process started during it and the count was only re-decided between iterations).

`PLAYGROUND_THREADS=N` fixes N threads (benchmarks' `--threads N` set it); a local sweep running
P runs at once gives each min(auto, cores // P) through `PLAYGROUND_THREADS_MAX`.

`default_procs(n)`: processes hosting a batch of `n` CPU ManiSkill envs (one per core in this
process's affinity, `PLAYGROUND_MANISKILL_PROCS` when set). It lives on this bottom floor so that
engine/envs (which applies it) and engine/config/limits (which budgets memory with it) share it
without envs importing config.

Results do not depend on the thread count: torch's CPU matrix products and the reductions these
small networks use give bitwise-identical results at 1 and 2 threads (tests/test_runtime.py
checks a finetune run's weights).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import psutil
from . import settings

THREADS_ENV = "PLAYGROUND_THREADS"
THREADS_MAX_ENV = "PLAYGROUND_THREADS_MAX"
AUTO_MAX_THREADS = 4          # 3x256 MLPs on minibatches of ~1,000 rows gain little past 4
MIN_WINDOW_S = 0.2            # CPU times count in 10 ms ticks (Linux): shorter windows are noise
TICK_EVERY_S = 1.0            # `tick()` from the hot loops re-decides at most this often
IDLE_SLACK = 0.3              # a core counts as idle when at most 70% of it is used by others


def _int_env(name: str) -> int | None:
    """A whole number >= 1 from the environment: ours through engine.settings (a bad value is an
    error naming it), others' (OMP_NUM_THREADS) leniently (not ours to refuse)."""
    if name in settings.SETTINGS:
        return settings.get(name)
    try:
        v = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return v if v >= 1 else None


def usable_cores() -> int:
    """Cores this process may run on: CPU affinity, capped by a cgroup v2 `cpu.max` quota and by
    `OMP_NUM_THREADS` when set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    omp = _int_env("OMP_NUM_THREADS")
    if omp is not None:
        n = min(n, omp)
    return max(1, n)


MANISKILL_PROCS_ENV = "PLAYGROUND_MANISKILL_PROCS"


def affinity_cores() -> int:
    """Cores in this process's CPU affinity (the os's count where affinity is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_procs(num_envs: int) -> int:
    """Worker processes for a batch of `num_envs` CPU ManiSkill envs: one per usable core at most
    (a process steps its envs one after the other, so more processes than cores buy no speed and
    cost ~430 MiB each); `$PLAYGROUND_MANISKILL_PROCS` when set."""
    cap = settings.get(MANISKILL_PROCS_ENV) or affinity_cores()
    return max(1, min(int(num_envs), cap))


_NOT_BUSY = ("idle", "iowait", "guest", "guest_nice")  # guest time is already counted inside user


def _busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy (not idle / iowait), or None when
    the platform does not say."""
    try:
        times = psutil.cpu_times()
    except (OSError, RuntimeError, psutil.Error):
        return None
    return sum(v for k, v in times._asdict().items() if k not in _NOT_BUSY)


def threads_mode() -> str | int:
    """'auto', or the fixed count PLAYGROUND_THREADS asks for."""
    return settings.get(THREADS_ENV)


@dataclass
class ThreadGovernor:
    """Sets torch's thread count: fixed, or (auto) the idle cores measured since the last look."""

    mode: str | int = "auto"
    cap: int = 1
    current: int = 0
    history: list[int] = field(default_factory=list)   # every count it set, in order
    _last: tuple[float, float, float] | None = None      # (wall, machine busy s, own CPU s)

    def _snapshot(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds()
        if busy is None:
            return None
        return time.monotonic(), busy, time.process_time()

    def _set(self, n: int) -> int:
        import torch  # lazy: the launcher reads this module's core counts without torch (~3-5 s to import)

        n = max(1, int(n))
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        if n != self.current:
            self.history.append(n)
        self.current = n
        return n

    def idle_cores(self) -> float | None:
        """Cores other processes left idle since the last look (None when unknown: the platform gives
        no CPU times, or this is the first look, which only starts the window); starts a new window."""
        now = self._snapshot()
        if now is None:
            return None
        if self._last is None:
            self._last = now
            return None
        if now[0] - self._last[0] < MIN_WINDOW_S:
            time.sleep(MIN_WINDOW_S - (now[0] - self._last[0]))
            now = self._snapshot() or now
        wall = now[0] - self._last[0]
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
        self._last = now
        return (os.cpu_count() or 1) - others

    def adjust(self) -> int:
        """Re-decide the thread count (auto mode: the idle cores since the last look, one thread
        before the first window); returns the count now in force."""
        if self.mode != "auto":
            return self._set(int(self.mode))
        idle = self.idle_cores()
        if idle is None:
            return self._set(self.current or 1)
        return self._set(min(self.cap, max(1, math.floor(idle + IDLE_SLACK))))


_GOVERNOR: ThreadGovernor | None = None


def tick() -> None:
    """Called from hot loops: re-decide this process's thread count if its governor is in auto
    mode and its last look is at least TICK_EVERY_S old (costs one clock read otherwise)."""
    gov = _GOVERNOR
    if gov is None or gov.mode != "auto" or gov._last is None:
        return
    if time.monotonic() - gov._last[0] >= TICK_EVERY_S:
        gov.adjust()


def thread_governor() -> ThreadGovernor:
    """This process's governor (one per process; the first call sets one thread in auto mode and
    starts the first measuring window). Training loops call `adjust()` once per iteration."""
    global _GOVERNOR
    mode = threads_mode()
    cap = max(1, min(AUTO_MAX_THREADS, usable_cores(), _int_env(THREADS_MAX_ENV) or AUTO_MAX_THREADS))
    if _GOVERNOR is None or _GOVERNOR.mode != mode or _GOVERNOR.cap != cap:
        _GOVERNOR = ThreadGovernor(mode=mode, cap=cap)
        _GOVERNOR.adjust()
    return _GOVERNOR


def configure_threads() -> int:
    """Set torch's thread count for this process (auto or PLAYGROUND_THREADS) and return it."""
    return thread_governor().current


def set_threads(threads: int = 0) -> int:
    """`threads` > 0 fixes the count for this process and the Finetuner it builds (through
    PLAYGROUND_THREADS); 0 keeps the default (auto). Benchmarks' `--threads` uses this."""
    if threads > 0:
        os.environ[THREADS_ENV] = str(threads)
    return configure_threads()
