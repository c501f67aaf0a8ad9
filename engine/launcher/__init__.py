"""The launcher: the one launch core under both front doors (the CLI `engine.cli` and the
Textual launcher `tui`). Nothing here prints or imports typer, rich or textual.

- `plan`: `plan_run` -> `RunPlan` (config, checkpoints, findings, missing ladder roles),
  `plan_sweep` -> `SweepPlan`, `ray_device` (a Ray run given GPUs trains on cuda), `launch(plan)` -> `RunProcess`, `resume`, `ensure_runs_dir`
- `progress`: `RunProgress` (status, iteration, env steps, SR now, peak, ETA), `peak`, `peak_sr`, `metric_keys`, `metric_series`
- `pretrain_job`: pretraining an env's checkpoint ladder as a job with a run directory
- `ladder`: `ladder_rows(env)`: what an env's checkpoint ladder holds
- `spawn`: `prepare_run`, `start_worker` -> `RunProcess` (poll / wait / stop / detach)
- `follow`: `follow` (blocking iterator of `Event`s), `RunWatcher` (non-blocking), `RunDeleted`
- `reconcile`: `reconcile` (a dead worker without a terminal status -> `failed`)
- `stop`: `stop_run` (a run possibly started by another process)
- `listing`: `list_runs` -> `RunSummary`, `resolve_run`, `summarize_run`
- `config_diff`: `config_text` (a run's config.toml as written), `diff_runs` -> `ConfigDiff` (the keys in
  which two runs' configs differ), `diff_configs`
- `proc`: `pid_alive`
- statistics over seeds (engine.analysis.stats, for the fronts): `block`, `describe`, `p_improve`,
  `group_runs`, `grouped_series`, `run_values`, `pct_ci`, `METRICS`; `group_curves` (engine.figures: one curve with a CI
  band per configuration) and its `BAND_CAPTION`
- `budget`: `run_budget` (the seed's Phase 1c: final SR vs online budget for offline, online and
  offline->online), `parse_budgets`, `DEFAULT_BUDGETS`; `save_budget_figure` (engine.figures) draws it
- `stall`: `detect_stall` / `stall_fields`: a `running` run without progress ("stalled since ...")
- `distributed` (Ray, its own subpackage): `ray_available`, `parse_address`, `RayClusterError`, and
  `open_ray_backend` (`sweep --backend ray`; Ray itself is imported only when a sweep connects)
- `sweep_record`: a sweep's id and record of its runs; `load_sweep` / `resume_jobs` (`sweep --resume`)
- `sweep_run`: running a planned sweep to its results (`begin_sweep`, `drive`, `point_results`, `run_rows`,
  `sweep_arguments`, `missing_by_env`, `default_retries`): what `playground sweep` does besides drawing
- settings (engine.settings): `setting(NAME)`, `check_settings()`, `SettingError`: every environment
  variable the project reads, validated in one place
- the doctor (engine.doctor, re-exported for the fronts): `diagnose_run` / `diagnose_records` -> `Diagnosis` list, `machine_report`,
  `machine_notes`, `require_physx_gpu` (also checked by planning: `PhysxMissing`); `estimate_wall_s(cfg)`
  (engine.config.walltime: the run's wall time here, before launch) and `describe_wall_time`
- for the fronts, re-exported from the floors below (the fronts import only this package and engine.errors,
  enforced by tests/test_import_direction.py): configs and presets, run records, figures, checkpoints, limits,
  sweeps, reproduce and the action-ranking protocols. Names that would import torch or Ray load on first use
  (`__getattr__` below), so `playground --help` stays quick.
"""
from __future__ import annotations

import importlib

# planning and launching a run or a sweep
from .plan import (CheckpointView, LaunchRefused, MissingCheckpoints, RunPlan, SweepPlan, ensure_runs_dir, launch,
                   plan_run, plan_sweep, ray_device, resume)
from .spawn import RunProcess, default_worker_cmd, prepare_run, start_worker
from .proc import pid_alive
from .stop import stop_run

# following, listing and reading runs
from .follow import Event, RunDeleted, RunWatcher, follow
from .listing import (RunSummary, final_status, list_runs, planned_iterations, read_config, read_findings,
                      resolve_run, run_dirs, summarize_run)
from .config_diff import ConfigDiff, config_text, diff_configs, diff_runs, parsed_config
from .progress import Peak, RunProgress, metric_keys, metric_series, peak, peak_sr, sr_series
from .reconcile import reconcile, worker_out_tail
from .stall import Stall, detect_stall, stall_fields

# sweeps: the local scheduler, seeds and grid points, a sweep's record (`sweep --resume`)
from .sweep import Job, LocalBackend, Scheduler, parse_seeds, point_label, point_stats
from .distributed import ray_available
from .sweep_record import SweepRecord, SweepRecordError, load_sweep, new_sweep, resume_jobs, track
from .sweep_run import (begin_sweep, default_retries, drive, missing_by_env, point_results, run_rows,
                        sweep_arguments)

# pretraining an env's checkpoint ladder as a job, and what a ladder holds
from .pretrain_job import active_pretrain, check_device, start_pretrain
from .ladder import ladder_rows, rows_of_index
from engine.jobs.pretrain import is_pretrain_job

# configs and presets (engine.config): the fields a run has, presets, loading, the limits checked at launch
from engine.config.loading import derive_exp_name, list_presets, load_config, presets_dir
from engine.config.limits import MAX_SWEEP_RUNS, check_parallel
from engine.config.schema import CHECKPOINT_KEYS, FIELDS, RunConfig
from engine.config.walltime import describe as describe_wall_time, estimate_wall_s

# run records (engine.records, engine.sr): statuses and metric rows as the worker writes them
from engine.records import TERMINAL, RecordError, now_iso, read_metrics, read_status, runs_dir, write_status
from engine.sr import is_iteration_row

# statistics over seeds, the budget study and the reproduce table (engine.analysis)
from engine.analysis.stats import METRICS, block, describe, group_runs, grouped_series, p_improve, pct_ci, run_values
from engine.analysis.reproduce import BEST_CONFIGURATIONS, DEFAULT_SEEDS
from .reproduce_job import reproduce
from .budget import DEFAULT_BUDGETS, BudgetError, parse_budgets, run_budget

# figures (engine.figures, matplotlib loaded when a figure is drawn)
from engine.figures import (BAND_CAPTION, Curve, curve_of_run, export_sr_overlay, group_curves, save_budget_figure,
                            save_sr_figure)

# settings (engine.settings): every environment variable the project reads, validated in one place
from engine.settings import SettingError, check_all as check_settings, get as setting

# the doctor (engine.doctor)
from engine.doctor import (Diagnosis, PhysxMissing, diagnose_records, diagnose_run, machine_notes, machine_report,
                           require_physx_gpu)

# loaded on first use (start-up costs measured with `python -X importtime`): the ranking protocols and
# engine.train.device import torch (3-5 s here), the Ray backend Ray (1.2 s), the Ray cluster module 3-39 ms,
# engine.envs ~10-30 ms; `playground --help` and the TUI's start need none of them
_LAZY = {
    "SeedProtocol": "engine.analysis.ranking_seed", "run_seed_ranking": "engine.analysis.ranking_seed",
    "ESTIMATORS": "engine.analysis.ranking", "RankingProtocol": "engine.analysis.ranking",
    "run_ranking": "engine.analysis.ranking",
    "check_env_id": "engine.envs", "ladder_dir": "engine.checkpoints", "read_index": "engine.checkpoints",
    "cuda_missing_message": "engine.train.device",
    "RayClusterError": "engine.launcher.distributed.cluster", "parse_address": "engine.launcher.distributed.cluster",
    "open_ray_backend": "engine.launcher.distributed.backend",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


# the public API: every name bound above except submodules (and `annotations`), and the lazy ones
__all__ = [name for name, value in list(globals().items())
           if not name.startswith("_") and name != "annotations" and not isinstance(value, type(importlib))]
__all__ += list(_LAZY)
