"""Planning and launching runs: the one path from a preset and overrides to a started worker,
shared by `playground check / run / sweep / reproduce` and the TUI. No printing: progress
goes to an optional `on_progress(message)` callback, problems are `UserError`s.

- `plan_run(preset, overrides, env=, seed=, runs_dir=)` -> `RunPlan`: the loaded config
  (every problem at once: `ConfigError`), its checkpoints (`CheckpointView`s with role, env,
  iteration, log-std, det / stoch SR), the validator's findings, and the ladder roles the
  config needs that the env has not built yet (`missing`).
- `plan_sweep(preset, overrides, seeds=, grid=, ...)` -> `SweepPlan`: one `RunPlan` per grid
  point x seed, findings merged by id, and `jobs(runs_dir)` for `engine.launcher.sweep.Scheduler`.
- `launch(plan, runs_dir=, force=)` -> `RunProcess`: refuses error-level findings unless
  forced (`LaunchRefused`) and missing ladder roles (`MissingCheckpoints`), writes the run
  directory and starts its worker. `resume(run_dir)` continues a stopped or failed run.
- `ensure_runs_dir(path)` (from engine.records): prove the runs directory can be written, creating nothing (the first run directory creates it).

Overrides are either a mapping `{key: value}` (the TUI) or the command line's `--key value`
tokens (the CLI); values may be strings as typed or typed values.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from engine.config.limits import check_sweep_size
from engine.config.loading import (ConfigError, checkpoint_metas, load_config, parse_overrides, preset_metadata,
                                   resolve_checkpoints)
from engine.doctor import require_physx_gpu
from engine.errors import UserError
from engine.jobs.pretrain import is_pretrain_job
from engine.records import ensure_runs_dir, read_status
from engine.run_files import read_config

from .spawn import check_resumable, prepare_run, start_worker
from .sweep import Job, SweepError, grid_points, parse_grid, parse_seeds, point_label, point_slug

Progress = Callable[[str], None] | None
Overrides = Mapping[str, Any] | Sequence[str] | None


class LaunchRefused(UserError):
    """Error-level findings and no `force`: the launch was refused (the CLI's exit code 3)."""

    def __init__(self, plan: "RunPlan"):
        self.findings = plan.errors
        ids = ", ".join(f.id for f in self.findings)
        super().__init__(f"refused: {len(self.findings)} error-level finding{'s' if len(self.findings) != 1 else ''} "
                         f"({ids}); apply their fixes, or force the launch")


class MissingCheckpoints(UserError):
    """The config names ladder roles the environment has not built yet (pretrain it first)."""


def _say(on_progress: Progress, msg: str) -> None:
    if on_progress is not None:
        on_progress(msg)


# --- one run --------------------------------------------------------------------------------

@dataclass
class CheckpointView:
    """A checkpoint a config uses, as a picker shows it (metadata read without building a network)."""
    key: str                      # checkpoint | critic_checkpoint | optimal_checkpoint | data_checkpoint
    spec: str                     # the value as given: role, seed name, path or none
    role: str | None              # the role the spec names, else the file's own role
    path: str | None
    env: str | None               # the env the checkpoint was trained on
    kind: str | None              # policy | critic
    iteration: int | None
    logstd: float | None
    det_sr: float | None
    stoch_sr: float | None
    missing: bool                 # a ladder role not built yet

    LABELS = {"checkpoint": "start policy", "critic_checkpoint": "critic",
              "optimal_checkpoint": "MC rollout policy", "data_checkpoint": "data policy"}

    @property
    def label(self) -> str:
        return self.LABELS.get(self.key, self.key)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "label": self.label}


def checkpoint_view(info: Any) -> CheckpointView:
    meta = info.meta or {}
    return CheckpointView(key=info.key, spec=info.spec, role=info.role or (meta.get("role") or None),
                          path=str(info.path) if info.path is not None else None, env=meta.get("env_id"),
                          kind=meta.get("kind"), iteration=meta.get("iteration"), logstd=meta.get("logstd"),
                          det_sr=meta.get("det_sr"), stoch_sr=meta.get("stoch_sr"), missing=bool(info.missing_role))


@dataclass
class RunPlan:
    """A validated run, ready to launch."""
    preset: str
    overrides: dict[str, Any]
    cfg: Any                                  # engine.config.schema.RunConfig
    infos: dict[str, Any]                     # key -> engine.config.loading.CheckpointInfo
    findings: list                            # engine.validate.Finding, errors first
    missing: list[tuple[str, str]]            # (config key, role) the env's ladder lacks
    expected_sr: float | None = None          # the seed's SR for this preset, when it says

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list:
        return [f for f in self.findings if f.severity != "error"]

    @property
    def ok(self) -> bool:
        """No error-level finding (missing roles aside)."""
        return not self.errors

    @property
    def env(self) -> str:
        return self.cfg.env

    @property
    def checkpoints(self) -> list[CheckpointView]:
        return [checkpoint_view(i) for i in self.infos.values()]

    def findings_dicts(self) -> list[dict]:
        return [f.to_dict() for f in self.findings]

    def missing_text(self) -> str:
        """"'start' (checkpoint), 'optimal' (optimal_checkpoint)"."""
        return ", ".join(f"'{r}' ({k})" for k, r in self.missing)

    def missing_error(self) -> MissingCheckpoints:
        return MissingCheckpoints(
            f"env {self.env} has no {self.missing_text()} checkpoint yet: build its ladder with "
            f"`playground pretrain --env {self.env}`, or set the key to a checkpoint file or none")


def _overrides_dict(overrides: Overrides, problems: list) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    try:
        return dict(parse_overrides([str(x) for x in overrides]))
    except ConfigError as e:
        problems += e.problems
        return {}


def load_run_config(preset: str, overrides: Overrides = None, *, env: str | None = None, seed: int | None = None,
                    more: Mapping[str, Any] | None = None):
    """The preset with its overrides (and `more`, e.g. a grid point) as a RunConfig; a
    ConfigError carries every problem of the overrides and the preset together."""
    problems: list = []
    return _load(preset, _overrides_dict(overrides, problems), problems, env=env, seed=seed, more=more)


def _load(preset: str, over: dict[str, Any], problems: list, *, env: str | None, seed: int | None,
          more: Mapping[str, Any] | None = None):
    over = {**over, **(more or {})}
    try:
        cfg = load_config(preset, over, env=env, seed=seed)
    except ConfigError as e:
        problems += e.problems
        cfg = None
    if problems:
        raise ConfigError(problems)
    return cfg


def complete_plan(preset: str, cfg: Any, overrides: dict[str, Any], *, runs_dir: str | Path | None = None,
                  on_progress: Progress = None) -> RunPlan:
    """Resolve the checkpoints of a loaded config and validate it."""
    from engine.validate import validate  # lazy: ~50 ms of start-up (measured) that `playground --help` need not pay

    require_physx_gpu(cfg.env, cfg.device)  # device cuda on a maniskill: env: refused here when SAPIEN's GPU library is missing
    _say(on_progress, f"resolving checkpoints for env {cfg.env}")
    infos, problems = resolve_checkpoints(cfg)
    if problems:
        raise ConfigError(problems)
    missing = [(k, i.role or i.spec) for k, i in infos.items() if i.missing_role]
    expected = preset_metadata(preset).get("expected_sr") if preset else None
    _say(on_progress, "validating")
    findings = list(validate(cfg, checkpoint_metas(infos), runs_dir=Path(runs_dir) if runs_dir else None,
                             expected_sr=expected))
    cfg.preset = cfg.preset or preset
    return RunPlan(preset, dict(overrides), cfg, infos, findings, missing, expected)


def plan_run(preset: str, overrides: Overrides = None, env: str | None = None, seed: int | None = None, *,
             runs_dir: str | Path | None = None, on_progress: Progress = None) -> RunPlan:
    """Load, resolve and validate one run (raises `UserError` for unusable input)."""
    _say(on_progress, f"loading preset {preset}")
    problems: list = []
    over = _overrides_dict(overrides, problems)
    cfg = _load(preset, over, problems, env=env, seed=seed)
    return complete_plan(preset, cfg, over, runs_dir=runs_dir, on_progress=on_progress)


def launch(plan: RunPlan, *, runs_dir: str | Path, force: bool = False, command: str | None = None,
           name: str | None = None, worker_cmd: list[str] | None = None):
    """Write the run directory of `plan` and start its worker; returns the `RunProcess`
    (`.run_dir`, `.pid`). Refuses missing ladder roles and, unless `force`, error findings."""
    if plan.missing:
        raise plan.missing_error()
    if plan.errors and not force:
        raise LaunchRefused(plan)
    root = ensure_runs_dir(runs_dir)
    cfg = dataclasses.replace(plan.cfg)
    if command is not None:
        cfg.command = command
    cfg.preset = cfg.preset or plan.preset
    run_dir = prepare_run(cfg, plan.findings_dicts(), runs_dir=root, name=name)
    return start_worker(run_dir, worker_cmd=worker_cmd)


def resume(run_dir: str | Path):
    """Start the worker of a stopped or failed run again, from its last save."""
    run_dir = Path(run_dir)
    conf = read_config(run_dir)
    if is_pretrain_job(conf):
        raise UserError(f"{run_dir.name} is a pretraining job, not a run: start it again with "
                        f"`playground pretrain --env {conf.get('env')}`")
    st = read_status(run_dir) or {}
    if st.get("status") == "done":
        raise UserError(f"run {run_dir.name} is already done: start a new run instead")
    check_resumable(run_dir)
    return start_worker(run_dir, resume=True)


# --- sweeps ---------------------------------------------------------------------------------

@dataclass
class PlannedRun:
    point_index: int
    point: dict[str, str]
    seed: int
    plan: RunPlan


@dataclass
class SweepPlan:
    preset: str
    points: list[dict[str, str]]
    seeds: list[int]
    runs: list[PlannedRun] = field(default_factory=list)

    @property
    def plans(self) -> list[RunPlan]:
        return [r.plan for r in self.runs]

    def findings_by_id(self) -> list[tuple[Any, list[str]]]:
        """Each distinct finding once, with the grid points (labels) it appears at."""
        by_id: dict[str, tuple[Any, list[str]]] = {}
        for r in self.runs:
            for f in r.plan.findings:
                ent = by_id.setdefault(f.id, (f, []))
                if point_label(r.point) not in ent[1]:
                    ent[1].append(point_label(r.point))
        return list(by_id.values())

    @property
    def findings(self) -> list:
        return [f for f, _ in self.findings_by_id()]

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def missing(self) -> list[tuple[str, str, str]]:
        """(env, config key, role) the ladders lack, each once."""
        out: list[tuple[str, str, str]] = []
        for p in self.plans:
            for k, r in p.missing:
                if (p.env, k, r) not in out:
                    out.append((p.env, k, r))
        return out

    def set_device(self, device: str | None) -> None:
        """Every run on `device` (None: as planned); see `ray_device`."""
        if device is not None:
            for r in self.runs:
                r.plan.cfg.device = device

    def jobs(self, runs_dir: str | Path, *, command: str | None = None, name_prefix: str | None = None,
             point: dict | None = None) -> list:
        """`Job`s for `engine.launcher.sweep.Scheduler`; each run directory is written when its
        job starts. Run names: `name_prefix-s<seed>`, else the exp_name (plus the grid point
        when exp_names do not tell the points apart) and `-s<seed>`."""
        root = Path(runs_dir)
        first = {r.point_index: r.plan.cfg.exp_name for r in self.runs}
        names_differ = len(set(first.values())) == len(first)
        jobs = []
        for r in self.runs:
            cfg = dataclasses.replace(r.plan.cfg)
            if command is not None:
                cfg.command = command
            if name_prefix:
                name = f"{name_prefix}-s{r.seed}"
            else:
                name = "-".join(x for x in (cfg.exp_name, "" if names_differ else point_slug(r.point),
                                            f"s{r.seed}") if x)

            def make(cfg=cfg, fd=r.plan.findings_dicts(), name=name) -> Path:
                return prepare_run(cfg, fd, runs_dir=root, name=name)

            jobs.append(Job(point=dict(point) if point is not None else r.point, seed=r.seed, prepare=make))
        return jobs


def plan_sweep(preset: str, overrides: Overrides = None, *, seeds: str | Sequence[int] = (0,),
               grid: Mapping[str, Sequence[str]] | Sequence[str] | None = None, env: str | None = None,
               runs_dir: str | Path | None = None, on_progress: Progress = None) -> SweepPlan:
    """Plan every grid point x seed of `preset`. Every config is loaded before anything is
    resolved, and all their problems are raised together (each once)."""
    seed_list = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    if not seed_list:
        raise SweepError("no seeds given (e.g. --seeds 0-4)")
    if grid is None:
        grid_d: dict[str, list[str]] = {}
    elif isinstance(grid, Mapping):
        grid_d = {k: [str(v) for v in vs] for k, vs in grid.items()}
    else:
        grid_d = parse_grid(list(grid))
    ignored: list = []
    base = _overrides_dict(overrides, ignored)  # its problems are reported with the loads below
    both = sorted(set(base) & set(grid_d))
    if both:
        raise SweepError(f"{', '.join(both)} given both as an override and in --grid: keep one")
    if "seed" in grid_d:
        raise SweepError("seeds are swept with --seeds, not --grid seed=...")
    check_sweep_size(math.prod(len(v) for v in grid_d.values()), len(seed_list))
    points = grid_points(grid_d)
    _say(on_progress, f"loading {len(points)} grid point{'s' if len(points) != 1 else ''} x {len(seed_list)} "
                      f"seed{'s' if len(seed_list) != 1 else ''}")
    problems, seen = [], set()
    cfgs: dict[tuple[int, int], Any] = {}
    for pi, pt in enumerate(points):
        for s in seed_list:
            try:
                cfgs[(pi, s)] = load_run_config(preset, overrides, env=env, seed=s, more=pt)
            except ConfigError as e:
                for p in e.problems:
                    if str(p) not in seen:
                        seen.add(str(p))
                        problems.append(p)
    if problems:
        raise ConfigError(problems)
    sp = SweepPlan(preset, points, seed_list)
    for (pi, s), cfg in cfgs.items():
        plan = complete_plan(preset, cfg, {**base, **points[pi]}, runs_dir=runs_dir, on_progress=on_progress)
        sp.runs.append(PlannedRun(pi, points[pi], s, plan))
    return sp


def ray_device(overrides: Overrides, gpus_per_run: float | None) -> tuple[Overrides, str | None]:
    """Where the runs of a Ray sweep train: a run that asks Ray for GPUs (`gpus_per_run` > 0) gets
    `device = cuda` (Ray makes its GPU the one the worker sees; `maniskill:` envs then run on
    physx_cuda), one that does not stays on the CPU. Returns the overrides without a `device`
    key and the device to give every run after planning (`SweepPlan.set_device`; None = as the
    preset says), so that planning does not ask the launcher's own machine for a GPU. A
    `--device` that contradicts the request is refused in one line (UserError)."""
    problems: list = []
    over = _overrides_dict(overrides, problems)
    asked = str(over.get("device", "")).strip()
    if problems or asked not in ("cpu", "cuda"):
        return overrides, ("cuda" if gpus_per_run else None)  # (bad overrides: planning reports them)
    if gpus_per_run and asked == "cpu":
        raise UserError(f"--device cpu with --gpus-per-run {gpus_per_run:g}: a run given a GPU trains on cuda; "
                        "drop --device cpu (or --gpus-per-run to stay on the CPU)")
    if not gpus_per_run and asked == "cuda":
        raise UserError("--device cuda with --backend ray: Ray gives a run a GPU only when it asks for one; "
                        "add --gpus-per-run (e.g. 1, or 0.5 to share a GPU between two runs)")
    if asked == "cpu":
        return overrides, None
    over.pop("device")
    return over, "cuda"
