"""The one definition of a stalled run, shared by the run doctor (DOC11) and the launcher's live
stall detection (`engine.launcher.stall`, which adds the worker's process state).

A `running` run is stalled when its records show no progress for far longer than its own pace:
- progress is the newest write to any of its records (`PROGRESS_FILES`: metrics.jsonl,
  engine.log, status.json, worker.out);
- its pace is the median seconds per iteration from the rows' `wall_s` (the worker's clock);
- the limit is `STALL_FACTOR` times that pace, and at least `STALL_MIN_S` (the first iteration
  also pays the initial evaluation and, offline, the dataset: up to ~3x a later one on our
  presets, docs/doctor.md); before the first timed row (environment start-up, dataset
  collection, critic fits) it is `FIRST_ROW_S`;
- a worker process that is stopped (SIGSTOP) or traced is stalled at once, dating from the last
  write (only a caller that can see the process passes its state).

Runs in any other status (queued, done, failed, stopped) are never stalled.
"""
from __future__ import annotations

import datetime as _dt
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from engine.records import usable_iteration

STALL_FACTOR = 10.0
STALL_MIN_S = 300.0
FIRST_ROW_S = 1800.0
PROGRESS_FILES = ("metrics.jsonl", "engine.log", "status.json", "worker.out")
STOPPED_STATES = ("stopped", "tracing-stop")


@dataclass(frozen=True)
class Stall:
    """A stalled run: `since` (unix time of its last sign of progress), why, and the numbers."""
    since: float
    why: str
    idle_s: float = 0.0
    limit_s: float | None = None          # None: the worker's process is stopped
    per_iteration_s: float | None = None

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


def stall_limit(per_iteration_s: float | None) -> float:
    """Seconds without a write after which a run with this pace is stalled."""
    return max(STALL_MIN_S, STALL_FACTOR * per_iteration_s) if per_iteration_s else FIRST_ROW_S


def judge_stall(status: dict | None, rows: list[dict], last: float | None, *, now: float | None = None,
                process_state: str | None = None, pid: object = None) -> Stall | None:
    """The run's stall, or None (module docstring). `last`: its last write (None: unknown, so
    only a stopped process can show a stall); `process_state`: psutil's status of its worker."""
    if (status or {}).get("status") != "running":
        return None
    now = time.time() if now is None else now
    since = now if last is None else last
    per = iteration_seconds(rows)
    if process_state in STOPPED_STATES:
        return Stall(since, f"worker pid {pid if pid is not None else status.get('pid')} is stopped (SIGSTOP?): "
                            "`kill -CONT` it or stop the run", max(0.0, now - since), None, per)
    if last is None:
        return None
    limit = stall_limit(per)
    if now - last <= limit:
        return None
    pace = f"{STALL_FACTOR:g}x its {per:.1f} s iterations" if per else "no iteration yet"
    return Stall(last, f"nothing written for {now - last:.0f} s ({pace}): hung? stop it and resume",
                 now - last, limit, per)
