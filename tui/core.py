"""The TUI's one door into the launch core (`engine.launcher`, its public API, the only engine
package the TUI imports besides `engine.errors`):
planning a run from a preset and the user's edits, launching it, stopping runs, reading their
records and progress, exporting figures. Screens call these functions and never reach into the
engine themselves, so the TUI keeps no launch logic of its own; every user mistake comes back
as `USER_ERRORS` (one clear line each), never as a traceback.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserError
from engine.launcher import (CHECKPOINT_KEYS, FIELDS, TERMINAL, RecordError, RunConfig, RunPlan, RunProgress,  # noqa: F401
                             RunWatcher, derive_exp_name, list_presets, load_config, plan_run, read_config,
                             read_findings, stop_run, summarize_run)
from engine.launcher import (describe_wall_time, diagnose_records, estimate_wall_s, metric_keys,  # noqa: F401
                             metric_series)  # the doctor, any metric's curve, the wall-time estimate
from engine.launcher import launch as launch_plan
from engine.launcher import run_dirs as launcher_run_dirs
from engine.launcher import worker_out_tail  # noqa: F401 (the follower's)
from engine.launcher import ConfigDiff, config_text, diff_runs, ladder_rows  # noqa: F401 (config view, diff, the ladder)
from engine.launcher import active_pretrain, export_sr_overlay
from engine.launcher import is_pretrain_job as is_job
from engine.launcher import start_pretrain as start_job

USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)

# what each checkpoint key is for, in the words of the launch screen
ROLE_LABELS = {"checkpoint": "start policy", "critic_checkpoint": "critic",
               "optimal_checkpoint": "MC rollout policy", "data_checkpoint": "data policy"}


def problem_lines(err: BaseException) -> list[str]:
    """The one-line problems a user error carries."""
    if isinstance(err, UserError):
        return err.lines()
    return [" ".join(str(err).split())]


@dataclass
class Plan:
    """The launch screen's view of a preset plus edits: the core's `RunPlan`, or the problems
    (unusable input) that stopped it."""
    preset: str
    overrides: dict[str, str]
    run_plan: RunPlan | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def cfg(self) -> RunConfig | None:
        return self.run_plan.cfg if self.run_plan else None

    @property
    def findings(self) -> list:
        return self.run_plan.findings if self.run_plan else []

    @property
    def errors(self) -> list:
        return self.run_plan.errors if self.run_plan else []

    @property
    def missing(self) -> list[tuple[str, str]]:
        return self.run_plan.missing if self.run_plan else []

    @property
    def checkpoints(self) -> dict:
        """Checkpoint key -> the core's CheckpointView (role, env, det / stoch SR)."""
        return {c.key: c for c in self.run_plan.checkpoints} if self.run_plan else {}

    @property
    def command(self) -> str:
        """The equivalent command line (recorded in the run's config and the experiment log)."""
        flags = [a for k, v in self.overrides.items() for a in (f"--{k}", str(v))]
        return shlex.join(["playground", "run", self.preset, *flags])


def preset_config(preset: str) -> RunConfig:
    """The preset's config with no edits (raises a UserError)."""
    return load_config(preset, {})


def plan(preset: str, overrides: dict[str, str], *, runs_dir: Path | None) -> Plan:
    """The core's plan_run (load, resolve checkpoints, validate), problems kept as lines."""
    p = Plan(preset, dict(overrides))
    try:
        p.run_plan = plan_run(preset, dict(overrides), runs_dir=runs_dir)
    except USER_ERRORS as e:
        p.problems = problem_lines(e)
    return p


def launch(p: Plan, *, runs_dir: Path, force: bool = False):
    """Start the planned run through the core; its RunProcess (`.run_dir`). `force`: the user
    confirmed the error-level findings (recorded in findings.json)."""
    if p.run_plan is None:
        raise UserError(p.problems or ["nothing to launch: pick a preset"])
    return launch_plan(p.run_plan, runs_dir=runs_dir, force=force, command=p.command)


def start_pretrain(env_id: str, *, runs_dir: Path):
    """Pretrain `env_id`'s checkpoint ladder as a followed job: (job directory, RunProcess), or
    (directory, None) when a live job for that env already exists (follow it, start no other)."""

    running = active_pretrain(env_id, runs_dir)
    if running is not None:
        return running, None
    proc = start_job(env_id, runs_dir=runs_dir, command=f"playground pretrain --env {env_id}")
    return proc.run_dir, proc


def ladder(env_id: str) -> list[dict]:
    """The roles env `env_id`'s checkpoint ladder holds (role, det / stoch SR, critics' policy and
    gamma: the launcher's `ladder_rows`); [] when it has none or the env id is unusable."""
    try:
        return ladder_rows(env_id)
    except USER_ERRORS:
        return []


def is_pretrain_job(config: dict) -> bool:
    return is_job(config)


def stop(run_dir: Path, grace_s: float = 10.0) -> dict:
    """Stop a run (whoever started it); its final status."""
    return stop_run(run_dir, grace_s)


def run_dirs(runs_dir: Path) -> list[Path]:
    """Every run directory under `runs_dir`, oldest first (no reading of their records; links
    to runs outside it are left out)."""
    return launcher_run_dirs(runs_dir)


def export_figure(run_dirs_: list[Path], out: Path) -> Path:
    """The SR overlay of these runs as a PNG or SVG (matplotlib, through the core's figures)."""
    return export_sr_overlay(run_dirs_, out)
