"""Running `playground reproduce`: every row x seed of the seed's Best Configurations table
(engine.analysis.reproduce.BEST_CONFIGURATIONS) planned as sweeps (`plan_sweep`), a `done` run
of an earlier invocation with the same resolved config and seed reused, the rest run by the
local `Scheduler`; then engine.analysis.reproduce writes the table and its bands figure.
"""
from __future__ import annotations

import shlex
import time
import tomllib
from pathlib import Path
from typing import Callable

from engine.analysis.reproduce import (BEST_CONFIGURATIONS, QUICK, RowResult, bands_figure, machine_facts, run_summary,
                                       write_results)
from engine.analysis.stats import config_key
from engine.config.tomlio import dumps_flat
from engine.records import read_status
from engine.run_files import read_config

from .listing import summarize_run
from .plan import plan_sweep
from .spawn import resolved_checkpoint_paths
from .sweep import run_to_end


def finished_runs(runs_dir: Path) -> dict[tuple, Path]:
    """`done` runs of earlier reproduce invocations, by (seed, resolved config but the seed)."""
    out: dict[tuple, Path] = {}
    for d in sorted(runs_dir.glob("*-reproduce-*")):
        if (read_status(d) or {}).get("status") == "done":
            conf = read_config(d)
            out.setdefault((conf.get("seed"), config_key(conf)), d)
    return out


def planned_key(cfg) -> tuple:
    """(seed, config key) of a planned run, as its config.toml will read."""
    conf = tomllib.loads(dumps_flat(resolved_checkpoint_paths(cfg)[0]))
    return conf.get("seed"), config_key(conf)


def plan_jobs(rows: list, *, env: str, seeds: list[int], quick: bool, runs_dir: Path, device: str | None,
              reuse: bool = True):
    """Jobs of every row x seed (reused finished runs already ended) and the exact commands."""
    done = finished_runs(runs_dir) if reuse else {}
    jobs, commands, reused = [], {}, 0
    for regime, method, seed_sr, preset, seed_final in rows:
        sp = plan_sweep(preset, seeds=seeds, env=env, runs_dir=runs_dir)
        over = dict(QUICK[sp.runs[0].plan.cfg.regime]) if quick else {}
        if over:
            sp = plan_sweep(preset, over, seeds=seeds, env=env, runs_dir=runs_dir)
        if sp.missing:
            raise next(p for p in sp.plans if p.missing).missing_error()
        sp.set_device(device)
        for r in sp.runs:
            cmd = (f"playground run {preset} --env {env} --seed {r.seed}" + (f" --device {device}" if device else "")
                   + "".join(f" --{k} {shlex.quote(v)}" for k, v in over.items()))
            r.plan.cfg.command = cmd
            commands.setdefault(preset, []).append(cmd)
        for job, r in zip(sp.jobs(runs_dir, name_prefix=f"reproduce-{preset}", point={"preset": preset}), sp.runs):
            prev = done.get(planned_key(r.plan.cfg))
            if prev is not None:
                job.run_dir, job.state, job.summary = prev, "ended", summarize_run(prev)
                reused += 1
            jobs.append(job)
    return jobs, commands, reused


def run_jobs(jobs: list, parallel: int, on_event: Callable[[str], None]) -> None:
    for j in jobs:
        if j.state == "ended":
            on_event(f"reused  {j.point['preset']} seed {j.seed}: {j.run_dir} (done)")

    def say(job, what: str) -> None:
        if what == "started":
            on_event(f"started {job.point['preset']} seed {job.seed}: {job.run_dir}")
        else:
            s = job.summary
            on_event(f"ended   {job.point['preset']} seed {job.seed}: {s.status}, final SR "
                     f"{'-' if s.last_sr is None else f'{s.last_sr:.3f}'}")

    run_to_end(jobs, parallel, say)


def reproduce(*, env: str, seeds: list[int], quick: bool, runs_dir: Path, out: Path, parallel: int = 1,
              presets: list[str] | None = None, device: str | None = None, reuse: bool = True,
              on_event: Callable[[str], None] = print) -> list[RowResult]:
    """Run every row x seed not yet done (all of them with `reuse=False`; the ladder must exist: the CLI
    builds it first), write `out` and its bands figure."""
    rows = [r for r in BEST_CONFIGURATIONS if presets is None or r[3] in presets]
    jobs, commands, reused = plan_jobs(rows, env=env, seeds=seeds, quick=quick, runs_dir=runs_dir, device=device,
                                       reuse=reuse)
    started = time.strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    run_jobs(jobs, parallel, on_event)
    results = [RowResult(regime, method, seed_sr, preset,
                         [run_summary(j.run_dir) for j in jobs if j.point["preset"] == preset and j.run_dir],
                         seed_final)
               for regime, method, seed_sr, preset, seed_final in rows]
    fig = bands_figure(results, runs_dir, out.with_name(f"{out.stem}-bands.png"))
    write_results(out, results, env=env, seeds=seeds, quick=quick, commands=commands, started=started,
                  wall_s=time.perf_counter() - t0, reused=reused, machine=machine_facts(device or "cpu", parallel),
                  figure=fig.name if fig else None)
    return results
