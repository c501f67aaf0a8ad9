"""Sweeps: seeds x grid points, at most N workers at once, and the per-point statistics.

- `parse_seeds("0-4,7")` -> [0, 1, 2, 3, 4, 7]; `parse_grid(["gamma=0.8,0.9"])` ->
  {"gamma": ["0.8", "0.9"]}; `grid_points(grid)` -> the cartesian product as override dicts.
- `Scheduler(jobs, parallel=N, start=...)` starts queued jobs as slots free up; call `step()`
  on a timer (non-blocking: the CLI and the TUI each draw their own display) and `stop_all()`
  on interrupt. A job's run directory is prepared only when it starts.
- `point_stats(summaries)`: mean and standard deviation of peak and final SR of one grid point,
  and its statistics block (`engine.analysis.stats.block`: n, mean, IQM, median, min, max and
  the IQM's 95% bootstrap CI of `final_sr`, `peak_sr` and `sr_at_end`).

Backends: `local` (the default: `start_worker`, one process per run on this machine) and
`ray` (`engine.launcher.distributed.backend.RayBackend`: each run's worker is a Ray task; its records
stream back into this machine's runs directory). A backend has `start(run_dir, resume)`
returning a handle with `poll()`, `request_stop()`, `finish_stop(grace_s)` and `died` (why a
run ended without a final status, else None), and may have `pump()` (called every step) and
`close()`.

Retries: a run whose worker or node died (`handle.died`) is marked `failed` with the reason
and started again, up to `max_retries` times, from its last saved iteration (`resume.pt`; from
scratch when it saved none). Runs that failed on their own (bad config, non-finite values) or
were stopped are not retried.
"""
from __future__ import annotations

import itertools
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.analysis.stats import block, run_values
from engine.config.limits import MAX_SWEEP_RUNS
from engine.errors import UserError
from engine.records import TERMINAL, read_status, truncate_metrics, write_status
from engine.runtime import THREADS_MAX_ENV, usable_cores

from .follow import RunWatcher
from .listing import RunSummary, summarize_run
from .reconcile import describe_exit, reconcile
from .spawn import RunProcess, start_worker


class SweepError(UserError, ValueError):
    """A malformed --seeds / --grid argument (one line)."""


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise SweepError(f"--seeds {text!r}: range {part} runs backwards; write {hi}-{lo}")
                if len(out) + hi - lo + 1 > MAX_SWEEP_RUNS:
                    raise SweepError(f"--seeds {text!r}: more than {MAX_SWEEP_RUNS} seeds; sweep fewer at a time")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except SweepError:
            raise
        except ValueError:
            raise SweepError(f"--seeds {text!r}: expected seeds such as 0-4 or 0,1,5") from None
    if not out:
        raise SweepError(f"--seeds {text!r}: no seeds given (e.g. --seeds 0-4)")
    if any(s < 0 for s in out):
        raise SweepError(f"--seeds {text!r}: seeds must be >= 0")
    return list(dict.fromkeys(out))


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: expected key=v1,v2,... (e.g. --grid gamma=0.8,0.9)")
        key, vals = item.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        values = [v.strip() for v in vals.split(",") if v.strip()]
        if not key or not values:
            raise SweepError(f"--grid {item!r}: expected key=v1,v2,... (e.g. --grid gamma=0.8,0.9)")
        if key in grid:
            raise SweepError(f"--grid {key} is given twice: put all its values in one --grid {key}=a,b,c")
        grid[key] = list(dict.fromkeys(values))
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "(preset)"


def point_slug(point: dict[str, Any]) -> str:
    return "-".join(f"{k}{v}" for k, v in point.items())


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for a single value; None for none)."""
    if not values:
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def point_stats(summaries: list[RunSummary]) -> dict[str, Any]:
    peaks = [s.peak_sr for s in summaries if s.peak_sr is not None]
    finals = [s.last_sr for s in summaries if s.last_sr is not None]
    steps = [s.env_steps for s in summaries if s.env_steps is not None]
    pm, ps = mean_std(peaks)
    fm, fs = mean_std(finals)
    return {"n": len(summaries), "n_done": sum(s.status == "done" for s in summaries),
            "n_failed": sum(s.status == "failed" for s in summaries),
            "peak_sr_mean": pm, "peak_sr_std": ps, "final_sr_mean": fm, "final_sr_std": fs,
            "env_steps_mean": (sum(steps) / len(steps)) if steps else None,
            **{k: v for k, v in block([run_values(s.path) for s in summaries]).items() if k != "n"}}


# --- scheduling ---------------------------------------------------------------------------

@dataclass
class Job:
    point: dict[str, str]
    seed: int
    prepare: Callable[[], Path]             # makes the run directory (called when the job starts)
    run_dir: Path | None = None
    handle: Any = None                      # LocalHandle or RayHandle
    watcher: RunWatcher | None = None
    state: str = "waiting"                  # waiting | active | ended | skipped
    summary: RunSummary | None = None
    events: list = field(default_factory=list)
    failures: list[str] = field(default_factory=list)   # why each earlier attempt died
    resume: bool = False                    # a resumed sweep: continue this job's run (sweep_record)

    @property
    def retries(self) -> int:
        return len(self.failures)


class Scheduler:
    """Runs `jobs` with at most `parallel` active at once. Non-blocking: call `step()`."""

    def __init__(self, jobs: list[Job], parallel: int = 1, backend: Any = None, max_retries: int = 0):
        self.jobs = jobs
        self.parallel = max(1, int(parallel))
        self.backend = backend or LocalBackend()
        if isinstance(self.backend, LocalBackend) and self.backend.parallel is None:
            self.backend.parallel = self.parallel
        self.max_retries = max(0, int(max_retries))
        self.stopping = False
        for j in jobs:  # a resumed sweep's runs that are still live (sweep_record.AdoptedHandle)
            if j.state == "active" and j.watcher is None and j.run_dir is not None:
                self._watch(j)

    @property
    def active(self) -> list[Job]:
        return [j for j in self.jobs if j.state == "active"]

    @property
    def finished(self) -> bool:
        return all(j.state in ("ended", "skipped") for j in self.jobs)

    def _watch(self, job: Job) -> None:
        # progress only: `step` polls the handle itself, and must see a dead worker's status
        # before it is reconciled (to tell a death, which is retried, from a failure)
        job.watcher = RunWatcher(job.run_dir, proc=None, liveness_every_s=float("inf"))

    def _retry(self, job: Job) -> bool:
        """Start a run whose worker died again, from its last save; False when it may not."""
        if self.stopping or job.handle.died is None or job.retries >= self.max_retries:
            return False
        job.failures.append(job.handle.died)
        resume = (job.run_dir / "checkpoints" / "resume.pt").is_file()
        if not resume:
            truncate_metrics(job.run_dir, 0)  # it starts over: rows of the dead attempt would repeat
        write_status(job.run_dir, "queued", pid=None, ended=None, exit_code=None, error=None,
                     retries=job.retries, retried_after=job.failures)
        job.handle = self.backend.start(job.run_dir, resume=resume)
        self._watch(job)
        return True

    def _continue(self, run_dir: Path, resume: bool) -> Any:
        """Start an existing run's worker again: from its last save (`resume.pt`), else from
        scratch (its rows dropped, back to queued)."""
        if resume and not (run_dir / "checkpoints" / "resume.pt").is_file():
            truncate_metrics(run_dir, -1)
            write_status(run_dir, "queued", pid=None, ended=None, exit_code=None, error=None)
            resume = False
        return self.backend.start(run_dir, resume=resume)

    def step(self) -> list[tuple[Job, str]]:
        """Start jobs into free slots, collect progress; returns (job, 'started'|'retried'|'ended')."""
        notes: list[tuple[Job, str]] = []
        pump = getattr(self.backend, "pump", None)
        if pump is not None:
            pump()
        for job in self.active:
            job.events = job.watcher.poll() if job.watcher else []
            rc = job.handle.poll()      # reaps and reconciles a worker that has ended
            if rc is not None:
                reconcile(job.run_dir, rc)
                job.events += job.watcher.poll() if job.watcher else []
                if self._retry(job):
                    notes.append((job, "retried"))
                    continue
                job.state = "ended"
                job.summary = summarize_run(job.run_dir)
                notes.append((job, "ended"))
        while not self.stopping and len(self.active) < self.parallel:
            nxt = next((j for j in self.jobs if j.state == "waiting"), None)
            if nxt is None:
                break
            if nxt.run_dir is None:
                nxt.run_dir = nxt.prepare()
                nxt.handle = self.backend.start(nxt.run_dir)
            else:  # a resumed sweep's run: continue it from its last save
                nxt.handle = self._continue(nxt.run_dir, nxt.resume)
            self._watch(nxt)
            nxt.state = "active"
            notes.append((nxt, "started"))
        return notes

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Start nothing more; stop every active worker at once (each gets `grace_s` to save)."""
        self.stopping = True
        for j in self.jobs:
            if j.state == "waiting":
                j.state = "skipped"
        active = self.active
        for j in active:
            j.handle.request_stop()
        if active:
            with ThreadPoolExecutor(max_workers=len(active)) as pool:
                list(pool.map(lambda j: j.handle.finish_stop(grace_s), active))
        for j in active:
            j.state = "ended"
            j.summary = summarize_run(j.run_dir)

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


class LocalBackend:
    """Workers as local processes. With `parallel` P > 1 runs at once each worker may use at most
    usable cores // P torch threads (PLAYGROUND_THREADS_MAX; engine.runtime picks within it)."""

    name = "local"

    def __init__(self, parallel: int | None = None):
        self.parallel = parallel

    def worker_env(self) -> dict[str, str] | None:
        if not self.parallel or self.parallel <= 1 or THREADS_MAX_ENV in os.environ:
            return None
        return {**os.environ, THREADS_MAX_ENV: str(max(1, usable_cores() // self.parallel))}

    def start(self, run_dir: Path, resume: bool = False) -> "LocalHandle":
        return LocalHandle(start_worker(run_dir, resume=resume, env=self.worker_env()))


class LocalHandle:
    """A local worker process (`RunProcess`) as the scheduler sees it."""

    def __init__(self, proc: RunProcess):
        self.proc = proc
        self.died: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proc, name)  # pid, run_dir, ...

    def poll(self) -> int | None:
        if self.died is None and self.proc.popen.poll() is not None:
            # the worker has exited, so only the launcher writes its status now: read it before
            # `proc.poll()` reconciles it (a worker that died left no terminal status)
            st = read_status(self.proc.run_dir) or {}
            if st.get("status") not in TERMINAL and not self.proc.stop_requested:
                self.died = f"the worker ended without a final status ({describe_exit(self.proc.returncode)})"
        return self.proc.poll()

    def request_stop(self) -> None:
        self.proc.stop_requested = True

    def finish_stop(self, grace_s: float) -> int:
        return self.proc.stop(grace_s)  # engine.launcher.proc.terminate: SIGTERM, SIGKILL after grace_s


def drive(scheduler: Scheduler, on_event: Callable[[Job, str], None], poll_s: float = 0.5) -> None:
    """Step the scheduler every `poll_s` seconds until it has finished, handing each event
    ("started", "retried", "ended") to `on_event`."""
    while not scheduler.finished:
        for job, what in scheduler.step():
            on_event(job, what)
        time.sleep(poll_s)


def run_to_end(jobs: list[Job], parallel: int, on_event: Callable[[Job, str], None]) -> None:
    """Run `jobs` (at most `parallel` at once) until every one has ended; Ctrl-C stops them all
    (each saves) and re-raises. For the launcher's own experiments (reproduce, budget)."""
    sched = Scheduler(jobs, parallel=parallel)
    try:
        drive(sched, on_event)
    except KeyboardInterrupt:
        sched.stop_all()
        raise
    finally:
        sched.close()
