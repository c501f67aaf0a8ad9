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
- `proc`: `pid_alive`
- the doctor (engine.doctor, re-exported for the fronts): `diagnose_run` / `diagnose_records` -> `Diagnosis` list, `machine_report`,
  `machine_notes`, `require_physx_gpu` (also checked by planning: `PhysxMissing`); `estimate_wall_s(cfg)`
  (engine.config.walltime: the run's wall time here, before launch) and `describe_wall_time`
"""
from engine.config.walltime import describe as describe_wall_time, estimate_wall_s
from engine.doctor import (Diagnosis, PhysxMissing, diagnose_records, diagnose_run, machine_notes, machine_report,
                           require_physx_gpu)

from .follow import Event, RunDeleted, RunWatcher, follow
from .listing import (RunSummary, list_runs, planned_iterations, read_config, read_findings, resolve_run,
                      summarize_run)
from .pretrain_job import active_pretrain, start_pretrain
from .plan import (CheckpointView, LaunchRefused, MissingCheckpoints, RunPlan, SweepPlan, ensure_runs_dir, launch,
                   plan_run, plan_sweep, ray_device, resume)
from .proc import pid_alive
from .progress import Peak, RunProgress, metric_keys, metric_series, peak, peak_sr, sr_series
from .reconcile import reconcile
from .spawn import RunProcess, default_worker_cmd, prepare_run, start_worker
from .stop import stop_run

__all__ = ["Event", "RunDeleted", "RunWatcher", "follow", "RunSummary", "list_runs", "planned_iterations",
           "read_config", "read_findings", "resolve_run", "sr_series", "summarize_run", "pid_alive",
           "reconcile", "RunProcess", "default_worker_cmd", "prepare_run", "start_worker", "stop_run",
           "CheckpointView", "LaunchRefused", "MissingCheckpoints", "RunPlan", "SweepPlan", "ensure_runs_dir",
           "launch", "plan_run", "plan_sweep", "ray_device", "resume", "Peak", "RunProgress", "peak", "peak_sr",
           "active_pretrain", "start_pretrain", "Diagnosis", "PhysxMissing", "diagnose_records", "diagnose_run", "metric_keys", "metric_series", "estimate_wall_s", "describe_wall_time", "machine_notes",
           "machine_report", "require_physx_gpu"]
