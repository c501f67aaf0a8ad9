"""Stall detection: a `running` run whose worker makes no progress.

A worker stopped with SIGSTOP, or hung (a deadlock, a dead NFS mount), keeps its status
`running` for ever and its pid alive, so liveness checks cannot see it. `detect_stall` looks at
two things:

- the worker's process state (psutil): `stopped` / `traced` is a stall at once, dating from the
  run's last sign of progress;
- progress itself: the newest write to any of the run's records (metrics.jsonl, engine.log,
  status.json, worker.out). With at least one iteration timed, the run is stalled when nothing
  was written for more than `STALL_FACTOR` times its own median iteration time (and at least
  `STALL_MIN_S`); before the first row (environment start-up, dataset collection, critic fits),
  after `FIRST_ROW_S`.

`Stall.label()` is what listings show: `stalled since HH:MM:SS` (the date too when not today).
A worker on another host (a Ray node) is judged by its streamed records only.
"""
from __future__ import annotations

import datetime as _dt
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from engine.records import usable_iteration

from .reconcile import read_worker_info

try:  # process state; without psutil only the records' progress is judged
    import psutil
except ImportError:  # pragma: no cover - psutil ships with the test extras
    psutil = None

STALL_FACTOR = 10.0
STALL_MIN_S = 120.0
FIRST_ROW_S = 1800.0
PROGRESS_FILES = ("metrics.jsonl", "engine.log", "status.json", "worker.out")


@dataclass(frozen=True)
class Stall:
    since: float          # unix time of the last sign of progress
    why: str

    def label(self) -> str:
        t = _dt.datetime.fromtimestamp(self.since)
        fmt = "%H:%M:%S" if t.date() == _dt.date.today() else "%Y-%m-%d %H:%M:%S"
        return f"stalled since {t.strftime(fmt)}"

    def describe(self) -> str:
        return f"{self.label()} ({self.why})"


def last_progress(run_dir: str | Path) -> float | None:
    """Unix time of the newest write to the run's records, or None when none exists."""
    times = []
    for name in PROGRESS_FILES:
        try:
            times.append((Path(run_dir) / name).stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def iteration_seconds(rows: list[dict]) -> float | None:
    """The run's median seconds per iteration from its rows' `wall_s`, or None when not timed."""
    timed = [(it, r["wall_s"]) for r in rows if (it := usable_iteration(r)) is not None
             and isinstance(r.get("wall_s"), (int, float)) and not isinstance(r.get("wall_s"), bool)]
    steps = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(timed, timed[1:]) if b[0] > a[0] and b[1] >= a[1]]
    if steps:
        return statistics.median(steps)
    if len(timed) == 1 and timed[0][1] > 0:
        return timed[0][1] / (timed[0][0] + 1)
    return None


def process_state(pid: object) -> str | None:
    """psutil's status of a local process ('running', 'sleeping', 'stopped', ...), or None."""
    if psutil is None or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        return psutil.Process(pid).status()
    except (psutil.Error, OSError, ValueError):
        return None


def _local(worker_info: dict | None) -> bool:
    host = (worker_info or {}).get("host")
    return not isinstance(host, str) or not host or host == socket.gethostname()


def detect_stall(run_dir: str | Path, status: dict, rows: list[dict], *, worker_info: dict | None = None,
                 now: float | None = None) -> Stall | None:
    """The run's stall, or None when it is not `running` or shows progress (module docstring)."""
    if (status or {}).get("status") != "running":
        return None
    now = time.time() if now is None else now
    last = last_progress(run_dir) or now
    if _local(worker_info) and process_state(status.get("pid")) in ("stopped", "tracing-stop"):
        return Stall(last, f"worker pid {status.get('pid')} is stopped (SIGSTOP?): `kill -CONT` it or stop the run")
    per = iteration_seconds(rows)
    limit = max(STALL_MIN_S, STALL_FACTOR * per) if per else FIRST_ROW_S
    if now - last > limit:
        pace = f"{STALL_FACTOR:g}x its {per:.1f} s iterations" if per else "no iteration yet"
        return Stall(last, f"nothing written for {now - last:.0f} s ({pace}): hung? stop it and resume")
    return None


def stall_fields(run_dir: str | Path, status: dict, rows: list[dict], *, now: float | None = None) -> dict:
    """`{"stalled_since": label, "stall": label with why}` for a stalled run, else {}: what a
    status shown in a listing, `show` or the TUI carries on top of status.json."""
    if (status or {}).get("status") != "running":
        return {}
    stall = detect_stall(run_dir, status, rows, worker_info=read_worker_info(run_dir), now=now)
    return {"stalled_since": stall.label(), "stall": stall.describe()} if stall else {}
