"""Sweeps: seeds x grid points, at most N workers at once, and the per-point statistics.

- `parse_seeds("0-4,7")` -> [0, 1, 2, 3, 4, 7]; `parse_grid(["gamma=0.8,0.9"])` ->
  {"gamma": ["0.8", "0.9"]}; `grid_points(grid)` -> the cartesian product as override dicts.
- `Scheduler(jobs, parallel=N, start=...)` starts queued jobs as slots free up; call `step()`
  on a timer (non-blocking: the CLI and the TUI each draw their own display) and `stop_all()`
  on interrupt. A job's run directory is prepared only when it starts.
- `point_stats(summaries)`: mean and standard deviation of peak and final SR of one grid point.

Backends: `local` (the default: `start_worker`, one process per run on this machine) and
`ray` (`RayBackend`: each run's worker is a Ray task on the cluster at `address`; the runs
directory must be on a filesystem every node sees).
"""
from __future__ import annotations

import itertools
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.config.limits import MAX_SWEEP_RUNS
from engine.errors import UserError
from engine.records import TERMINAL, now_iso

from .follow import RunWatcher
from .listing import RunSummary, summarize_run
from .reconcile import reconcile, write_worker_info
from .spawn import RunProcess, default_worker_cmd, start_worker


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
            "env_steps_mean": (sum(steps) / len(steps)) if steps else None}


# --- scheduling ---------------------------------------------------------------------------

@dataclass
class Job:
    point: dict[str, str]
    seed: int
    prepare: Callable[[], Path]             # makes the run directory (called when the job starts)
    run_dir: Path | None = None
    handle: Any = None                      # RunProcess or RayHandle
    watcher: RunWatcher | None = None
    state: str = "waiting"                  # waiting | active | ended | skipped
    summary: RunSummary | None = None
    events: list = field(default_factory=list)


class Scheduler:
    """Runs `jobs` with at most `parallel` active at once. Non-blocking: call `step()`."""

    def __init__(self, jobs: list[Job], parallel: int = 1, backend: "LocalBackend | RayBackend | None" = None):
        self.jobs = jobs
        self.parallel = max(1, int(parallel))
        self.backend = backend or LocalBackend()
        self.stopping = False

    @property
    def active(self) -> list[Job]:
        return [j for j in self.jobs if j.state == "active"]

    @property
    def finished(self) -> bool:
        return all(j.state in ("ended", "skipped") for j in self.jobs)

    def step(self) -> list[tuple[Job, str]]:
        """Start jobs into free slots, collect progress; returns (job, 'started'|'ended') notes."""
        notes: list[tuple[Job, str]] = []
        for job in self.active:
            job.events = job.watcher.poll() if job.watcher else []
            rc = job.handle.poll()      # reaps and reconciles a local worker that has ended
            if rc is not None:
                reconcile(job.run_dir, rc)
                job.events += job.watcher.poll() if job.watcher else []
                job.state = "ended"
                job.summary = summarize_run(job.run_dir)
                notes.append((job, "ended"))
        while not self.stopping and len(self.active) < self.parallel:
            nxt = next((j for j in self.jobs if j.state == "waiting"), None)
            if nxt is None:
                break
            nxt.run_dir = nxt.prepare()
            nxt.handle = self.backend.start(nxt.run_dir)
            nxt.watcher = RunWatcher(nxt.run_dir, proc=nxt.handle if isinstance(nxt.handle, RunProcess) else None,
                                     liveness_every_s=float("inf") if not isinstance(nxt.handle, RunProcess) else 2.0)
            nxt.state = "active"
            notes.append((nxt, "started"))
        return notes

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Start nothing more; SIGTERM every active worker at once, then reap them."""
        self.stopping = True
        for j in self.jobs:
            if j.state == "waiting":
                j.state = "skipped"
        active = self.active
        for j in active:
            j.handle.request_stop()
        deadline = time.monotonic() + grace_s
        for j in active:
            j.handle.finish_stop(max(0.0, deadline - time.monotonic()))
            j.state = "ended"
            j.summary = summarize_run(j.run_dir)


class LocalBackend:
    name = "local"

    def start(self, run_dir: Path) -> "LocalHandle":
        return LocalHandle(start_worker(run_dir))


class LocalHandle:
    """A RunProcess with a two-phase stop (signal everyone first, then wait for each)."""

    def __init__(self, proc: RunProcess):
        self.proc = proc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proc, name)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def request_stop(self) -> None:
        if self.proc.popen.poll() is None:
            self.proc.stop_requested = True
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass

    def finish_stop(self, grace_s: float) -> int:
        return self.proc.stop(grace_s)


# --- ray ----------------------------------------------------------------------------------

def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_task(run_dir: str, cmd: list[str], cwd: str, grace_s: float = 10.0) -> int:
    """Runs on a Ray worker: spawn the engine worker, wait; SIGTERM it when the task is cancelled."""
    out = open(Path(run_dir) / "worker.out", "ab")
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    out.close()
    write_worker_info(run_dir, {"pid": p.pid, "pgid": p.pid, "spawned": now_iso(), "host": socket.gethostname(),
                                "launcher": "ray", "cmd": cmd, "resume": False})
    try:
        return p.wait()
    except BaseException:  # ray.cancel raises KeyboardInterrupt / TaskCancelledError in the task
        try:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                return p.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                return p.wait()
        except ProcessLookupError:
            return p.wait()


class RayBackend:
    """Each run's worker as a Ray task (`ray.init(address=...)`). The runs directory must be on a
    filesystem shared by every node: progress is read from it as for local runs."""
    name = "ray"

    def __init__(self, address: str | None = None, grace_s: float = 10.0):
        import ray

        self.ray = ray
        ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
        self.task = ray.remote(num_cpus=1)(_ray_task)
        self.grace_s = grace_s

    def start(self, run_dir: Path) -> "RayHandle":
        ref = self.task.remote(str(run_dir.resolve()), default_worker_cmd(run_dir.resolve()), os.getcwd(), self.grace_s)
        return RayHandle(self.ray, ref, run_dir)


class RayHandle:
    def __init__(self, ray, ref, run_dir: Path):
        self.ray, self.ref, self.run_dir = ray, ref, run_dir
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _ = self.ray.wait([self.ref], timeout=0)
            if ready:
                try:
                    self.returncode = int(self.ray.get(self.ref))
                except Exception:  # the task itself failed or was cancelled
                    self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        ready, _ = self.ray.wait([self.ref], timeout=timeout)
        if not ready:
            raise TimeoutError(f"ray task for {self.run_dir.name} still running")
        return self.poll()

    def request_stop(self) -> None:
        self.ray.cancel(self.ref)

    def finish_stop(self, grace_s: float) -> int:
        try:
            return self.wait(grace_s + 5)
        except TimeoutError:
            self.ray.cancel(self.ref, force=True)
            st = summarize_run(self.run_dir)
            if st.status not in TERMINAL:
                from engine.records import write_status

                write_status(self.run_dir, "stopped", error="stopped by the launcher: the ray task was cancelled")
            return -9
