"""The launcher: the one launch core under both front doors (the CLI `engine.cli` and the
Textual launcher `tui`). Nothing here prints or imports typer, rich or textual.

- `plan`: `plan_run` -> `RunPlan` (config, checkpoints, findings, missing ladder roles),
  `plan_sweep` -> `SweepPlan`, `ray_device` (a Ray run given GPUs trains on cuda), `launch(plan)` -> `RunProcess`, `resume`, `ensure_runs_dir`
- `progress`: `RunProgress` (status, iteration, env steps, SR now, peak, ETA), `peak`, `peak_sr`
- `pretrain_job`: pretraining an env's checkpoint ladder as a job with a run directory
- `ladder`: `ladder_rows(env)`: what an env's checkpoint ladder holds
- `spawn`: `prepare_run`, `start_worker` -> `RunProcess` (poll / wait / stop / detach)
- `follow`: `follow` (blocking iterator of `Event`s), `RunWatcher` (non-blocking), `RunDeleted`
- `reconcile`: `reconcile` (a dead worker without a terminal status -> `failed`)
- `stop`: `stop_run` (a run possibly started by another process)
- `listing`: `list_runs` -> `RunSummary`, `resolve_run`, `summarize_run`
- `proc`: `pid_alive`
- statistics over seeds (engine.analysis.stats, for the fronts): `block`, `describe`, `p_improve`,
  `group_runs`, `grouped_series`, `run_values`, `pct_ci`, `METRICS`; `group_curves` (engine.figures: one curve with a CI
  band per configuration) and its `BAND_CAPTION`
- `budget`: `run_budget` (the seed's Phase 1c: final SR vs online budget for offline, online and
  offline->online), `parse_budgets`, `DEFAULT_BUDGETS`; `save_budget_figure` (engine.figures) draws it
- `stall`: `detect_stall` / `stall_fields`: a `running` run without progress ("stalled since ...")
- `sweep_record`: a sweep's id and record of its runs; `load_sweep` / `resume_jobs` (`sweep --resume`)
- settings (engine.settings): `setting(NAME)`, `check_settings()`, `SettingError`: every environment
  variable the project reads, validated in one place
"""
from engine.figures import save_budget_figure

from .budget import DEFAULT_BUDGETS, BudgetError, parse_budgets, run_budget
from .follow import Event, RunDeleted, RunWatcher, follow
from .listing import (RunSummary, list_runs, planned_iterations, read_config, read_findings, resolve_run,
                      final_status, run_dirs, summarize_run)
from .pretrain_job import active_pretrain, start_pretrain
from engine.figures import BAND_CAPTION, group_curves  # noqa: E402
from engine.analysis.stats import (METRICS, block, describe, group_runs, grouped_series, p_improve, pct_ci,  # noqa: E402
                                   run_values)
from .plan import (CheckpointView, LaunchRefused, MissingCheckpoints, RunPlan, SweepPlan, ensure_runs_dir, launch,
                   plan_run, plan_sweep, ray_device, resume)
from .proc import pid_alive
from .progress import Peak, RunProgress, peak, peak_sr, sr_series
from .reconcile import reconcile, worker_out_tail
from .spawn import RunProcess, default_worker_cmd, prepare_run, start_worker
from .stall import Stall, detect_stall, stall_fields
from .stop import stop_run
from .sweep_record import SweepRecord, SweepRecordError, load_sweep, new_sweep, resume_jobs, track
from engine.settings import SettingError, check_all as check_settings, get as setting

__all__ = ["Event", "RunDeleted", "RunWatcher", "follow", "RunSummary", "list_runs", "planned_iterations",
           "read_config", "read_findings", "resolve_run", "sr_series", "summarize_run", "pid_alive",
           "reconcile", "RunProcess", "default_worker_cmd", "prepare_run", "start_worker", "stop_run",
           "CheckpointView", "LaunchRefused", "MissingCheckpoints", "RunPlan", "SweepPlan", "ensure_runs_dir",
           "launch", "plan_run", "plan_sweep", "ray_device", "resume", "Peak", "RunProgress", "peak", "peak_sr",
           "active_pretrain", "start_pretrain", "METRICS", "block", "describe", "group_runs", "p_improve", "pct_ci",
           "run_values", "group_curves", "grouped_series", "BAND_CAPTION",
           "DEFAULT_BUDGETS", "BudgetError", "parse_budgets", "run_budget",
           "save_budget_figure"]

# the seed's action-ranking protocol (`playground analyze ranking --protocol seed`)
from ..analysis.ranking_seed import SeedProtocol, run_seed_ranking  # noqa: E402

__all__ += ["SeedProtocol", "run_seed_ranking"]
__all__ += ["SettingError", "check_settings", "setting", "run_dirs", "final_status", "Stall", "detect_stall", "stall_fields",
           "SweepRecord", "SweepRecordError", "worker_out_tail", "load_sweep", "new_sweep", "resume_jobs", "track"]
