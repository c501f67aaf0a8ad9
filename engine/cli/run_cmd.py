"""`playground check` and `playground run`.

`run`: load the preset with its overrides, resolve checkpoints (pretraining a missing ladder
first, or saying which command builds it with --no-pretrain), validate (error-level findings
refuse the launch with exit 3 unless --force), prepare the run directory, start the worker,
follow it with a live display and print a summary. Exit codes: 0 done, 1 failed, 2 unusable
input, 3 refused, 130 interrupted (the worker is stopped cleanly first). `--detach` leaves the
worker running and returns at once; `--resume RUN` continues a stopped or failed run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.launcher import (RunProcess, describe_wall_time, diagnose_run, estimate_wall_s, launch, plan_run,
                             read_findings, read_metrics, resolve_run, summarize_run)
from engine.launcher import resume as resume_run

from .common import command_line, console, ensure_runs_dir, print_json, runs_dir_of, say
from .doctor_cmd import doctor_summary
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, CliError, cli_errors
from .findings import counts, print_findings
from .following import ensure_ladders, follow_worker, still_missing
from .live import summary_table

RUNS_DIR_OPT = typer.Option(None, "--runs-dir", help="runs directory (default ./runs or $PLAYGROUND_RUNS_DIR)")


@cli_errors
def check(ctx: typer.Context,
          preset: str = typer.Argument(..., help="preset name (see `playground presets`) or path to a .toml file"),
          env: Optional[str] = typer.Option(None, "--env", help="environment id (overrides the preset)"),
          seed: Optional[int] = typer.Option(None, "--seed", help="seed (overrides the preset)"),
          runs_dir: Optional[Path] = RUNS_DIR_OPT,
          json_output: bool = typer.Option(False, "--json", help="one JSON object on stdout")) -> None:
    """Validate a preset + overrides: findings with why and fix. Exit 0 ok, 1 error-level findings, 2 unusable input.

    Overrides are the config keys as flags after the preset: `playground check gae-ppo --gamma 0.9`."""
    p = plan_run(preset, ctx.args, env=env, seed=seed, runs_dir=runs_dir_of(ctx, runs_dir))
    if p.missing:
        typer.echo(f"note: env {p.cfg.env} has no {p.missing_text()} checkpoint yet, so rules that read checkpoint "
                   f"metadata could not look at it: `playground run` builds the ladder first "
                   f"(or `playground pretrain --env {p.cfg.env}`)", err=True)
    ok = not p.errors
    est = estimate_wall_s(p.cfg)
    if json_output:
        print_json({"ok": ok, "findings": [f.to_dict() for f in p.findings]})  # (the shape interfaces.md fixes)
    else:
        if p.findings:
            typer.echo(f"{p.cfg.preset or preset}: {counts(p.findings)}")
            print_findings(p.findings)
        else:
            typer.echo(f"{p.cfg.preset or preset}: no findings ({p.cfg.regime} {p.cfg.estimator} + {p.cfg.update}, "
                       f"env {p.cfg.env}, exp_name {p.cfg.exp_name})")
        typer.echo(f"estimated wall time on this machine: about {describe_wall_time(est)}")
        if not ok:
            typer.echo("error-level findings: `playground run` refuses this config unless --force is given")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def finish(run_dir: Path, status: dict, interrupted: bool, *, json_mode: bool, findings: list[dict]) -> None:
    rows = read_metrics(run_dir)
    st = status.get("status")
    code = EXIT_OK if st == "done" else EXIT_INTERRUPTED if (interrupted or st == "stopped") else EXIT_FAILED
    if json_mode:
        print_json({"ok": st == "done",
                    "run": summarize_run(run_dir, reconcile_dead=False, rows=rows, status=status or None).to_dict(),
                    "findings": findings, "doctor": [d.to_dict() for d in diagnose_run(run_dir)], "exit_code": code})
    else:
        console().print(summary_table(run_dir, status, rows))
        doctor_summary(run_dir)
        if st == "stopped":
            typer.echo(f"resume it with `playground run --resume {run_dir.name}`")
        typer.echo(f"chart and table: `playground show {run_dir.name}`")
    raise typer.Exit(code)


@cli_errors
def run(ctx: typer.Context,
        preset: Optional[str] = typer.Argument(None, help="preset name or path to a .toml file"),
        env: Optional[str] = typer.Option(None, "--env", help="environment id (overrides the preset)"),
        seed: Optional[int] = typer.Option(None, "--seed", help="seed (overrides the preset)"),
        force: bool = typer.Option(False, "--force", help="run even with error-level findings"),
        json_output: bool = typer.Option(False, "--json", help="no live display; one JSON summary on stdout"),
        detach: bool = typer.Option(False, "--detach", help="start the worker and return; it keeps running"),
        resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN",
                                             help="continue a stopped or failed run from its last save"),
        no_pretrain: bool = typer.Option(False, "--no-pretrain",
                                         help="do not build a missing checkpoint ladder; say how instead"),
        grace: float = typer.Option(10.0, "--grace", help="seconds a stopping worker gets to save before SIGKILL"),
        runs_dir: Optional[Path] = RUNS_DIR_OPT) -> None:
    """Validate, run with a live display, print a summary. Exit 0 done, 1 failed, 2 unusable input, 3 refused, 130 interrupted.

    Overrides are config keys as flags after the preset: `playground run online-mc16-awr --mc_samples 8 --gamma 0.9`."""
    root = runs_dir_of(ctx, runs_dir)
    if resume:
        if preset or ctx.args:
            raise CliError("--resume continues a run with its own saved config: give no preset or overrides "
                           f"(got {' '.join([preset or '', *ctx.args]).strip()})")
        run_dir = resolve_run(resume, root)
        proc = resume_run(run_dir)
        say(f"resuming {run_dir.name} (worker pid {proc.pid})", json_mode=json_output)
        return _after_start(proc, run_dir, detach=detach, json_mode=json_output, grace=grace,
                            findings=read_findings(run_dir))
    if not preset:
        raise CliError("no preset given: `playground run PRESET [--key value ...]` (see `playground presets`), "
                       "or `playground run --resume RUN`")
    ensure_runs_dir(root)
    p = plan_run(preset, ctx.args, env=env, seed=seed, runs_dir=root)
    if ensure_ladders({p.env: p.missing_text()} if p.missing else {}, pretrain=not no_pretrain, runs_dir=root,
                      json_mode=json_output):
        p = plan_run(preset, ctx.args, env=env, seed=seed, runs_dir=root)
        if p.missing:
            raise still_missing(p.env, p.missing_text())
    findings = [f.to_dict() for f in p.findings]
    if p.findings:
        typer.echo(f"validator: {counts(p.findings)}", err=json_output)
        print_findings(p.findings, err=json_output)
    if p.errors and not force:
        msg = (f"refused: {len(p.errors)} error-level finding{'s' if len(p.errors) != 1 else ''} "
               f"({', '.join(f.id for f in p.errors)}); apply the fix flags above, or pass --force to run anyway")
        if json_output:
            print_json({"ok": False, "refused": True, "findings": findings})
        typer.echo(msg, err=True)
        raise typer.Exit(EXIT_REFUSED)
    if p.errors:
        say(f"--force: running despite {', '.join(f.id for f in p.errors)} (recorded in findings.json)",
            json_mode=json_output)
    fallback = [a for a in ["run", preset, *ctx.args] if a]
    fallback += (["--env", env] if env else []) + (["--seed", str(seed)] if seed is not None else [])
    fallback += ["--force"] if force else []
    proc = launch(p, runs_dir=root, force=True, command=command_line(fallback))
    run_dir, cfg = proc.run_dir, p.cfg
    say(f"run {run_dir.name}: {cfg.regime} {cfg.estimator} + {cfg.update}, env {cfg.env}, seed {cfg.seed} "
        f"(worker pid {proc.pid}, log {run_dir / 'engine.log'}; about {describe_wall_time(estimate_wall_s(cfg))} "
        "here)", json_mode=json_output)
    return _after_start(proc, run_dir, detach=detach, json_mode=json_output, grace=grace, findings=findings)


def _after_start(proc: RunProcess, run_dir: Path, *, detach: bool, json_mode: bool, grace: float,
                 findings: list[dict]) -> None:
    if detach:
        proc.detach()
        if json_mode:
            print_json({"ok": True, "detached": True, "run_id": run_dir.name, "run_dir": str(run_dir),
                        "pid": proc.pid})
        else:
            typer.echo(f"detached: the worker keeps running. Watch: `playground show {run_dir.name}`; "
                       f"stop: `playground stop {run_dir.name}`")
        raise typer.Exit(EXIT_OK)
    status, interrupted = follow_worker(proc, run_dir, json_mode=json_mode, grace_s=grace)
    finish(run_dir, status, interrupted, json_mode=json_mode, findings=findings)
