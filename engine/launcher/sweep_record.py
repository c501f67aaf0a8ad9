"""Resumable sweeps: a sweep has an id and a record of its runs.

`<runs_dir>/.sweep-<sweep_id>.json` (a hidden file: listings, which look for run folders, skip it) holds what the sweep
was asked (preset, overrides, seeds, grid, env, force) and, for every (grid point, seed), the
run directory it made, recorded the moment the directory is prepared (`track`). `playground
sweep --resume SWEEP` loads it (`load_sweep`: an id or a unique prefix), plans the same runs
again and `resume_jobs` sets each job up from its run's state, as Ray Tune's `Tuner.restore`
does for trials:

- `done`: not run again; its summary counts in the results;
- `stopped` / `failed` (a worker gone without a final status is reconciled to failed first):
  resumed from its last save (`resume.pt`; from scratch when it saved none);
- still running under a live worker (the sweep's launcher was killed, not its workers):
  followed to its end (`AdoptedHandle`), not started twice;
- never started (no run recorded, or its directory is gone): started as a new run.

Works with either backend: a resumed job is started with `backend.start(run_dir, resume=True)`.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.records import TERMINAL, atomic_write, now_iso, read_status

from .listing import summarize_run
from .reconcile import is_alive, reconcile
from .stop import stop_run

PREFIX = ".sweep-"


class SweepRecordError(UserError):
    """A sweep id that names no sweep record, or a record that cannot be read."""


@dataclass
class SweepRecord:
    id: str
    preset: str
    overrides: list[str] = field(default_factory=list)
    seeds: str = "0"
    grid: list[str] = field(default_factory=list)
    env: str | None = None
    force: bool = False
    created: str = ""
    runs: dict[str, str] = field(default_factory=dict)   # job key -> run directory name
    resumed: list[str] = field(default_factory=list)     # when it was resumed

    def path(self, runs_dir: str | Path) -> Path:
        return record_path(runs_dir, self.id)

    def save(self, runs_dir: str | Path) -> None:
        p = self.path(runs_dir)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(p, json.dumps(asdict(self), indent=1))


def record_path(runs_dir: str | Path, sweep_id: str) -> Path:
    return Path(runs_dir) / f"{PREFIX}{sweep_id}.json"


def job_key(point: dict[str, Any], seed: int) -> str:
    """The identity of a sweep job across restarts: its grid point and seed."""
    return json.dumps({"point": {k: str(v) for k, v in sorted(point.items())}, "seed": int(seed)}, sort_keys=True)


def new_sweep(runs_dir: str | Path, preset: str, **asked: Any) -> SweepRecord:
    """A new sweep record (not yet saved) with a unique id `<time>-<preset stem>`."""
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(preset).stem)[:40] or "sweep"
    base = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{stem}"
    sweep_id, n = base, 1
    while record_path(runs_dir, sweep_id).exists():
        n += 1
        sweep_id = f"{base}-{n}"
    return SweepRecord(id=sweep_id, preset=preset, created=now_iso(), **asked)


def load_sweep(runs_dir: str | Path, ref: str) -> SweepRecord:
    """The sweep record named by `ref` (an id, a unique prefix, or a path to its .json)."""
    folder = Path(runs_dir)
    ids = sorted(p.name[len(PREFIX):-len(".json")] for p in folder.glob(f"{PREFIX}*.json")) if folder.is_dir() else []
    ref = (ref or "").strip()
    p = Path(ref)
    if p.name.startswith(PREFIX) and p.name.endswith(".json") and p.is_file() and p.resolve().parent == folder.resolve():
        matches = [p.name[len(PREFIX):-len(".json")]]
    else:
        matches = [ref] if ref in ids else [i for i in ids if ref and i.startswith(ref)]
    if len(matches) != 1:
        known = ", ".join(ids[-5:]) or "none yet"
        what = "matches several sweeps" if matches else "names no sweep"
        raise SweepRecordError(f"--resume {ref!r} {what} in {folder} (recent: {known}): give a sweep id "
                               "as printed when the sweep started")
    path = record_path(folder, matches[0])
    try:
        data = json.loads(path.read_text())
        rec = SweepRecord(**{k: v for k, v in data.items() if k in SweepRecord.__dataclass_fields__})
    except (OSError, ValueError, TypeError) as e:
        raise SweepRecordError(f"sweep record {path} cannot be read ({e}): start the sweep again without --resume") from None
    if not isinstance(rec.runs, dict) or not isinstance(rec.preset, str):
        raise SweepRecordError(f"sweep record {path} is damaged: start the sweep again without --resume")
    return rec


def track(record: SweepRecord, jobs: list, runs_dir: str | Path) -> None:
    """Record each job's run directory in `record` (saved) the moment the job prepares it."""
    for job in jobs:
        def prepare(job=job, make=job.prepare) -> Path:
            run_dir = make()
            record.runs[job_key(job.point, job.seed)] = run_dir.name
            record.save(runs_dir)
            return run_dir

        job.prepare = prepare


class AdoptedHandle:
    """A run a killed sweep left running under a live worker: followed, stopped on request."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.died: str | None = None
        self._stop = False

    def poll(self) -> int | None:
        st = reconcile(self.run_dir) or {}
        if st.get("status") not in TERMINAL:
            return None
        code = st.get("exit_code")
        return code if isinstance(code, int) else {"done": 0, "stopped": 143}.get(st.get("status"), 1)

    def request_stop(self) -> None:
        self._stop = True

    def finish_stop(self, grace_s: float) -> int:
        st = stop_run(self.run_dir, grace_s)
        return st.get("exit_code") if isinstance(st.get("exit_code"), int) else 143


def resume_jobs(record: SweepRecord, jobs: list, runs_dir: str | Path) -> dict[str, int]:
    """Set each job up from its recorded run (module docstring); counts of what will happen."""
    counts = {"done": 0, "resume": 0, "follow": 0, "new": 0}
    for job in jobs:
        name = record.runs.get(job_key(job.point, job.seed))
        run_dir = Path(runs_dir) / name if name else None
        if run_dir is None or not run_dir.is_dir() or os.sep in (name or "") or name in (".", ".."):
            counts["new"] += 1
            continue
        job.run_dir = run_dir
        st = read_status(run_dir) or {}
        if st.get("status") not in TERMINAL and st.get("status") != "queued" and is_alive(run_dir, st):
            job.handle, job.state = AdoptedHandle(run_dir), "active"
            counts["follow"] += 1
            continue
        st = reconcile(run_dir) or st
        if st.get("status") == "done":
            job.state, job.summary = "ended", summarize_run(run_dir)
            counts["done"] += 1
        elif st.get("status") == "queued" and not (run_dir / "worker.json").exists():
            job.resume = False  # prepared, never started: start it as it is
            counts["new"] += 1
        else:
            job.resume = True
            counts["resume"] += 1
    record.resumed.append(now_iso())
    record.save(runs_dir)
    return counts
