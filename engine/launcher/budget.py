"""The seed's Phase 1c experiment (its repository's README, "Experiment Plan"): how much does
online finetuning buy per online env step, from scratch and after offline training?

For every seed, three arms:

- `offline`: `offline_preset` (one fixed dataset, no online steps): its final SR is the budget-0 point;
- `online`: `online_preset` from its start policy with `total_timesteps` = each budget;
- `offline->online`: `online_preset` from the offline run's final policy (its
  `checkpoints/latest.pt`), with each budget.

Stage 1 runs the offline and online runs, stage 2 the offline->online runs (they need the
offline run's policy; the validator's error findings do not stop them, since a start policy
stronger than KB01 allows is what a good offline run hands on; their findings.json keeps them);
at most `parallel` workers at once, through the same launcher as
`playground run` (every run is a normal run directory). Budgets count the collected online env
steps (`total_timesteps`), as the seed's 10k / 25k / 50k do; MC re-rollouts are not counted
here (each run's metrics keep them in `env_steps`). The result: the final SR of every run, and
per (arm, budget) the IQM over seeds with its 95% bootstrap CI, the mean, median, min and max
(engine.analysis.stats.describe, as every results table reports them; no interval for one seed),
written as JSON to `<runs dir>/analysis/budget-<stamp>.json`; `engine.figures.save_budget_figure`
draws final SR against the online budget, one line per arm.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.analysis.stats import describe
from engine.errors import UserError
from engine.records import read_metrics

from .plan import plan_sweep
from .sweep import Job, run_to_end

ARMS = ("offline", "online", "offline->online")
DEFAULT_BUDGETS = (10_000, 25_000, 50_000)


class BudgetError(UserError, ValueError):
    """A malformed budget experiment request (one line)."""


def parse_budgets(text: str) -> list[int]:
    """'10000,25k,50k' -> [10000, 25000, 50000] (sorted, unique, each >= 1)."""
    out = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        mult = 1000 if part.lower().endswith("k") else 1
        try:
            v = int(float(part[:-1] if mult == 1000 else part) * mult)
        except ValueError:
            raise BudgetError(f"--budgets {text!r}: {part!r} is not a number of env steps (e.g. 10000 or 10k)") from None
        if v < 1:
            raise BudgetError(f"--budgets {text!r}: {part!r} must be at least 1 env step")
        out.add(v)
    if not out:
        raise BudgetError(f"--budgets {text!r}: give at least one budget, e.g. 10k,25k,50k")
    return sorted(out)


def _jobs(preset: str, over: dict[str, str], seed: int, *, env: str | None, runs_dir: Path, name: str,
          point: dict, force: bool = False) -> list[Job]:
    sp = plan_sweep(preset, over, seeds=[seed], env=env, runs_dir=runs_dir)
    if sp.missing:
        raise next(p for p in sp.plans if p.missing).missing_error()
    errors = [f for p in sp.plans for f in p.errors]
    if errors and not force:
        raise BudgetError(f"{name}: the validator refuses it ({', '.join(f.id for f in errors)}: "
                          f"{errors[0].title}); check it with `playground check {preset}`")
    for r in sp.runs:
        r.plan.cfg.command = (f"playground run {preset} --seed {seed}" + (f" --env {env}" if env else "")
                              + "".join(f" --{k} {v}" for k, v in over.items()))
    return sp.jobs(runs_dir, name_prefix=name, point=point)


def _drive(jobs: list[Job], parallel: int, on_event: Callable[[str], None]) -> None:
    def say(job: Job, what: str) -> None:
        p = job.point
        label = f"{p['arm']} budget {p['budget']} seed {job.seed}"
        if what == "started":
            on_event(f"started {label}: {job.run_dir}")
        else:
            on_event(f"ended   {label}: {job.summary.status if job.summary else '?'}")

    run_to_end(jobs, parallel, say)


def final_sr(run_dir: Path) -> float | None:
    srs = [r["sr"] for r in read_metrics(run_dir) if isinstance(r.get("sr"), (int, float))]
    return float(srs[-1]) if srs else None


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, IQM, median, min, max and the IQM's 95% bootstrap CI (engine.analysis.stats.describe:
    a Student-t interval would leave [0, 1] at 3 seeds); None fields for no value, no CI for one."""
    d = describe(values)
    if d is None:
        return {"n": 0, "mean": None, "iqm": None, "median": None, "min": None, "max": None, "ci95": None}
    return d


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (arm, budget): `mean_ci` of the final SRs; the offline arm at budget 0."""
    keys = sorted({(r["arm"], r["budget"]) for r in runs}, key=lambda k: (ARMS.index(k[0]), k[1]))
    return [{"arm": a, "budget": b, **mean_ci([r["final_sr"] for r in runs if (r["arm"], r["budget"]) == (a, b)
                                               and r["final_sr"] is not None])} for a, b in keys]


def run_budget(*, online_preset: str, offline_preset: str, budgets: Sequence[int], seeds: Sequence[int],
               runs_dir: Path, env: str | None = None, parallel: int = 1,
               online_overrides: dict[str, str] | None = None, offline_overrides: dict[str, str] | None = None,
               on_event: Callable[[str], None] = print, json_out: Path | None = None) -> dict[str, Any]:
    """Run the three arms for every seed and budget (module docstring); returns the result dict
    (also written to `json_out`, default `<runs_dir>/analysis/budget-<stamp>.json`)."""
    on_over, off_over = dict(online_overrides or {}), dict(offline_overrides or {})
    t0, started = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M")
    stage1: list[Job] = []
    for s in seeds:
        stage1 += _jobs(offline_preset, off_over, s, env=env, runs_dir=runs_dir, name=f"budget-offline",
                        point={"arm": "offline", "budget": "0"})
        for b in budgets:
            stage1 += _jobs(online_preset, {**on_over, "total_timesteps": str(b)}, s, env=env, runs_dir=runs_dir,
                            name=f"budget-online-{b}", point={"arm": "online", "budget": str(b)})
    _drive(stage1, parallel, on_event)
    stage2: list[Job] = []
    for job in stage1:
        if job.point["arm"] != "offline":
            continue
        ckpt = job.run_dir / "checkpoints" / "latest.pt" if job.run_dir else None
        if ckpt is None or not ckpt.is_file():
            on_event(f"skipped offline->online seed {job.seed}: its offline run saved no policy")
            continue
        for b in budgets:
            stage2 += _jobs(online_preset, {**on_over, "checkpoint": str(ckpt), "total_timesteps": str(b)}, job.seed,
                            env=env, runs_dir=runs_dir, name=f"budget-offline-online-{b}",
                            point={"arm": "offline->online", "budget": str(b)}, force=True)
    _drive(stage2, parallel, on_event)
    runs = [{"arm": j.point["arm"], "budget": int(j.point["budget"]), "seed": j.seed, "run": j.run_dir.name,
             "status": j.summary.status if j.summary else None, "final_sr": final_sr(j.run_dir)}
            for j in stage1 + stage2 if j.run_dir is not None]
    result = {"experiment": "phase-1c-online-budget", "online_preset": online_preset,
              "offline_preset": offline_preset, "env": env, "budgets": list(budgets), "seeds": list(seeds),
              "started": started, "wall_s": round(time.perf_counter() - t0, 1), "runs": runs,
              "points": summarize(runs)}
    path = json_out or _default_json(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    result["json"] = str(path)
    return result


def _default_json(runs_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = Path(runs_dir) / "analysis" / f"budget-{stamp}.json", 1
    while path.exists():
        path, i = Path(runs_dir) / "analysis" / f"budget-{stamp}-{i}.json", i + 1
    return path
