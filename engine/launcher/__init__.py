"""The launcher: prepares run directories, spawns and stops workers, follows and lists runs.
Shared by the CLI (`engine.cli`) and the Textual launcher (`tui`).

- `spawn`: `prepare_run`, `start_worker` -> `RunProcess` (poll / wait / stop / detach)
- `follow`: `follow` (blocking iterator of `Event`s), `RunWatcher` (non-blocking), `RunDeleted`
- `reconcile`: `reconcile` (a dead worker without a terminal status -> `failed`)
- `stop`: `stop_run` (a run possibly started by another process)
- `listing`: `list_runs` -> `RunSummary`, `resolve_run`, `summarize_run`
- `proc`: `pid_alive`
"""
from .follow import Event, RunDeleted, RunWatcher, follow
from .listing import (RunSummary, list_runs, planned_iterations, read_config, read_findings, resolve_run,
                      sr_series, summarize_run)
from .proc import pid_alive
from .reconcile import reconcile
from .spawn import RunProcess, default_worker_cmd, prepare_run, start_worker
from .stop import stop_run

__all__ = ["Event", "RunDeleted", "RunWatcher", "follow", "RunSummary", "list_runs", "planned_iterations",
           "read_config", "read_findings", "resolve_run", "sr_series", "summarize_run", "pid_alive",
           "reconcile", "RunProcess", "default_worker_cmd", "prepare_run", "start_worker", "stop_run"]
