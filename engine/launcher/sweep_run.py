"""Running a planned sweep to its results: the part of `playground sweep` that is not display
(the CLI draws its tables and lines around these steps).

- `sweep_arguments(record)`: what a recorded sweep was started with (`sweep --resume`).
- `missing_by_env(plan)`: the ladder roles a sweep plan lacks, per env ("'start' (checkpoint), ...").
- `default_retries(backend, max_retries)`: restarts of a run whose worker or node died.
- `begin_sweep(...)`: a new sweep record saved, or a resumed one's runs adopted; then tracked.
- `drive(scheduler, on_event)` (from .sweep): step the scheduler until every job has ended.
- `point_results(jobs, points)`: per grid point its runs, seeds, retries and statistics.
- `run_rows(jobs)`: each ended run's summary with its retries and the run doctor's findings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from engine.doctor import diagnose_run

from .plan import SweepPlan
from .sweep import Job, drive, point_label, point_stats
from .sweep_record import SweepRecord, new_sweep, resume_jobs, track

__all__ = ["sweep_arguments", "missing_by_env", "default_retries", "begin_sweep", "drive", "point_results",
           "run_rows"]


def sweep_arguments(record: SweepRecord) -> dict[str, Any]:
    """preset, overrides, seeds, grid, env and force as the sweep recorded them when it started."""
    return {"preset": record.preset, "overrides": list(record.overrides), "seeds": record.seeds,
            "grid": list(record.grid), "env": record.env, "force": record.force}


def missing_by_env(plan: SweepPlan) -> dict[str, str]:
    """env -> the ladder roles its runs lack, as "'start' (checkpoint), 'optimal' (optimal_checkpoint)"."""
    missing: dict[str, list[str]] = {}
    for env_id, key, role in plan.missing:
        missing.setdefault(env_id, []).append(f"'{role}' ({key})")
    return {e: ", ".join(r) for e, r in missing.items()}


def default_retries(backend: str, max_retries: int | None) -> int:
    """`max_retries` when given, else 1 on Ray (a node can die under a run) and 0 locally."""
    return max_retries if max_retries is not None else (1 if backend == "ray" else 0)


def begin_sweep(record: SweepRecord | None, jobs: list[Job], runs_dir: Path, *, preset: str,
                overrides: Sequence[str], seeds: str, grid: Sequence[str], env: str | None,
                force: bool) -> tuple[SweepRecord, dict[str, int] | None]:
    """Without a record: a new sweep record, saved. With one (`--resume`): its done runs are
    skipped and its stopped or failed ones resumed (`resume_jobs`; the counts are returned).
    Either way the record then tracks the jobs' run directories."""
    counts = None
    if record is None:
        record = new_sweep(runs_dir, preset, overrides=list(overrides), seeds=seeds, grid=list(grid), env=env,
                           force=force)
        record.save(runs_dir)
    else:
        counts = resume_jobs(record, jobs, runs_dir)
    track(record, jobs, runs_dir)
    return record, counts


def point_results(jobs: list[Job], points: list[dict]) -> list[dict]:
    """Per grid point: point, label, runs (ids), seeds, n_retried and `point_stats` of its ended runs."""
    out = []
    for pt in points:
        sums = [j.summary for j in jobs if j.point == pt and j.summary is not None]
        out.append({"point": pt, "label": point_label(pt), "runs": [s.id for s in sums],
                    "seeds": [j.seed for j in jobs if j.point == pt and j.summary is not None],
                    "n_retried": sum(1 for j in jobs if j.point == pt and j.retries), **point_stats(sums)})
    return out


def run_rows(jobs: list[Job]) -> list[dict]:
    """Each ended run's summary, its retries (and why) and the run doctor's findings."""
    return [dict(j.summary.to_dict(), retries=j.retries, retried_after=j.failures,
                 doctor=[d.to_dict() for d in diagnose_run(j.run_dir)] if j.run_dir else [])
            for j in jobs if j.summary]
