"""From a preset and command-line overrides to a validated config, as `check`, `run` and
`sweep` need it: load (every problem at once), resolve checkpoints (pretraining a missing
ladder when allowed), validate, and print findings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from .common import fix_flags
from .errors import CliError


@dataclass
class Prepared:
    cfg: Any                      # RunConfig
    infos: dict                   # key -> CheckpointInfo
    findings: list                # list[Finding]
    missing: list[tuple[str, str]]   # (config key, role) still missing (check only)

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]


def load(preset: str, extra_args: list[str], *, env: str | None = None, seed: int | None = None,
         more: dict[str, str] | None = None):
    """parse_overrides + load_config; ConfigError with the problems of both."""
    from engine.config.loading import ConfigError, load_config, parse_overrides

    problems = []
    try:
        overrides = parse_overrides(list(extra_args))
    except ConfigError as e:
        problems += e.problems
        overrides = {}
    overrides.update(more or {})
    try:
        cfg = load_config(preset, overrides, env=env, seed=seed)
    except ConfigError as e:
        problems += e.problems
        cfg = None
    if problems:
        raise ConfigError(problems)
    return cfg


def missing_roles(infos: dict) -> list[tuple[str, str]]:
    return [(k, i.role or i.spec) for k, i in infos.items() if i.missing_role]


def resolve(cfg, *, pretrain: bool | None, json_mode: bool = False) -> tuple[dict, list[tuple[str, str]]]:
    """Resolve the checkpoints `cfg` uses. A role missing from the env's ladder is pretrained
    (`pretrain=True`), refused with the command that builds it (`False`), or returned (`None`:
    `check` reports it as a note)."""
    from engine.config.loading import ConfigError, resolve_checkpoints

    infos, problems = resolve_checkpoints(cfg)
    if problems:
        raise ConfigError(problems)
    missing = missing_roles(infos)
    if not missing or pretrain is None:
        return infos, missing
    roles = ", ".join(f"'{r}' ({k})" for k, r in missing)
    if not pretrain:
        raise CliError([f"env {cfg.env} has no {roles} checkpoint yet (--no-pretrain given): build its ladder "
                        f"with `playground pretrain --env {cfg.env}`, or set the key to a checkpoint file or none"])
    from .pretrain_cmd import pretrain_with_progress

    typer.echo(f"env {cfg.env} has no {roles} checkpoint yet: building its checkpoint ladder first "
               f"(same as `playground pretrain --env {cfg.env}`; one-time, a few minutes)", err=json_mode)
    pretrain_with_progress(cfg.env, seed=0, json_mode=json_mode)
    infos, problems = resolve_checkpoints(cfg)
    if problems:
        raise ConfigError(problems)
    still = missing_roles(infos)
    if still:
        roles = ", ".join(f"'{r}' ({k})" for k, r in still)
        raise CliError([f"pretraining env {cfg.env} did not produce a {roles} checkpoint (see "
                        f"`playground checkpoints --env {cfg.env}`): set the key to a checkpoint file or none"])
    return infos, []


def validate(cfg, infos: dict, *, runs_dir: Path | None, preset: str | None) -> list:
    from engine.config.loading import checkpoint_metas, preset_metadata
    from engine.validate import validate as _validate

    expected = preset_metadata(preset).get("expected_sr") if preset else None
    return list(_validate(cfg, checkpoint_metas(infos), runs_dir=runs_dir, expected_sr=expected))


def prepare(preset: str, extra_args: list[str], *, env: str | None, seed: int | None, runs_dir: Path | None,
            pretrain: bool | None, json_mode: bool = False, more: dict[str, str] | None = None) -> Prepared:
    cfg = load(preset, extra_args, env=env, seed=seed, more=more)
    infos, missing = resolve(cfg, pretrain=pretrain, json_mode=json_mode)
    return Prepared(cfg, infos, validate(cfg, infos, runs_dir=runs_dir, preset=preset), missing)


def counts(findings: list) -> str:
    e = sum(f.severity == "error" for f in findings)
    w = len(findings) - e
    return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"


def print_findings(findings: list, *, err: bool = False) -> None:
    """Each finding: id, severity, title; why; the fix as --key value flags."""
    for f in findings:
        sev = typer.style(f.severity, fg="red" if f.severity == "error" else "yellow", bold=True)
        typer.echo(f"{typer.style(f.id, bold=True)} {sev}: {f.title}", err=err)
        typer.echo(f"    why: {f.why}", err=err)
        if f.fix:
            typer.echo(f"    fix: {fix_flags(f.fix)}", err=err)
