"""`playground sweep`: seeds x grid points of one preset, at most N workers at once, and one
table at the end: per grid point the IQM over seeds with its 95% bootstrap CI of final SR, peak
SR and SR at end (engine.analysis.stats), and the final SR's mean +- std; `--json` carries the
statistics blocks (`final_sr`, `peak_sr`, `sr_at_end`: n, mean, iqm, median, min, max, ci95).

Every combination is loaded and validated before anything starts (unusable input: exit 2;
error-level findings: exit 3 unless --force). Exit 0 when every run is done, 1 when one
failed, 130 when interrupted (every worker is stopped cleanly first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.launcher import (Job, LocalBackend, Scheduler, SweepPlan, begin_sweep, check_parallel, default_retries,
                             drive, load_sweep, missing_by_env, pct_ci, peak_sr, plan_sweep, point_label,
                             point_results, ray_available, ray_device, run_rows, sweep_arguments)

from .common import command_line, console, ensure_runs_dir, num, pct, print_json, runs_dir_of, say
from .doctor_cmd import sweep_doctor
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, CliError, cli_errors
from .findings import counts, print_findings
from .following import ensure_ladders, interrupt_on_termination, still_missing
from .run_cmd import RUNS_DIR_OPT
from .runs_cmd import STATUS_STYLE


def _pm(m, s) -> str:
    return "-" if m is None else f"{100 * m:.1f}% ± {100 * (s or 0):.1f}"


def jobs_table(jobs: list[Job]) -> Table:
    t = Table(title="sweep", title_justify="left")
    for col, just in (("grid point", "left"), ("seed", "right"), ("run", "left"), ("status", "left"),
                      ("iter", "right"), ("SR", "right"), ("peak SR", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for j in jobs:
        w = j.watcher
        st = (j.summary.status if j.summary else (w.status or {}).get("status", "starting") if w else
              "skipped" if j.state == "skipped" else "waiting")
        rows = w.rows if w else []
        srs = [r["sr"] for r in rows if isinstance(r.get("sr"), (int, float))]
        it = rows[-1].get("iteration") if rows else None
        t.add_row(point_label(j.point), str(j.seed), j.run_dir.name if j.run_dir else "-",
                  Text(st, style=STATUS_STYLE.get(st, "dim")), num(it), pct(srs[-1] if srs else None),
                  pct(peak_sr(rows)))
    return t


def failure_lines(jobs: list[Job]) -> list[str]:
    """One line per run that was retried or failed, saying why."""
    out = []
    for j in jobs:
        if j.retries:
            out.append(f"retried {j.run_dir.name} {j.retries}x: {'; '.join(j.failures)}")
        if j.summary and j.summary.status == "failed":
            err = ((j.summary.error or "").splitlines() or ["(no error recorded)"])[0]
            out.append(f"failed  {j.run_dir.name}: {err}")
    return out


def results_table(res: list[dict], n_seeds: int) -> Table:
    t = Table(title=f"sweep results ({n_seeds} seed{'s' if n_seeds != 1 else ''} per point): IQM over seeds "
                    "[95% bootstrap CI of the IQM], and mean ± std", title_justify="left")
    for col, just in (("grid point", "left"), ("runs done", "right"), ("final SR", "right"), ("peak SR", "right"),
                      ("SR at end", "right"), ("final mean ± std", "right"), ("env steps", "right")):
        t.add_column(col, justify=just, no_wrap=col not in ("grid point", "runs done"))

    def order(r: dict) -> float:
        f = r.get("final_sr") or {}
        return -(f.get("iqm") if f.get("iqm") is not None else -1)

    for r in sorted(res, key=order):
        notes = [f"{r[k]} {w}" for k, w in (("n_failed", "failed"), ("n_retried", "retried")) if r.get(k)]
        done = f"{r['n_done']}/{r['n']}" + (f" ({', '.join(notes)})" if notes else "")
        t.add_row(r["label"], done, pct_ci(r.get("final_sr")), pct_ci(r.get("peak_sr")), pct_ci(r.get("sr_at_end")),
                  _pm(r["final_sr_mean"], r["final_sr_std"]),
                  num(round(r["env_steps_mean"])) if r["env_steps_mean"] is not None else "-")
    return t


@cli_errors
def sweep(ctx: typer.Context,
          preset: Optional[str] = typer.Argument(None, help="preset name or path to a .toml file"),
          seeds: str = typer.Option("0", "--seeds", help="seeds: 0-4, or 0,1,5"),
          grid: List[str] = typer.Option([], "--grid", help="key=v1,v2,... (repeatable): every combination runs"),
          parallel: int = typer.Option(1, "--parallel", min=1, help="at most this many workers at once"),
          backend: str = typer.Option("local", "--backend", help="local (this machine) or ray (a Ray cluster)"),
          address: Optional[str] = typer.Option(None, "--address", help="join a Ray cluster: auto, HOST:PORT or "
                                                "ray://HOST:PORT (default: a local instance on 127.0.0.1)"),
          cpus_per_run: Optional[float] = typer.Option(None, "--cpus-per-run", help="CPUs each Ray run asks for (1)"),
          gpus_per_run: Optional[float] = typer.Option(None, "--gpus-per-run",
                                                       help="GPUs each Ray run asks for (0); > 0 runs on cuda"),
          ray_dashboard: bool = typer.Option(False, "--ray-dashboard", help="start the local Ray instance's dashboard"),
          max_retries: Optional[int] = typer.Option(None, "--max-retries", min=0,
                                                    help="restarts of a run whose worker or node died, from its "
                                                         "last save (default 1 with --backend ray, else 0)"),
          env: Optional[str] = typer.Option(None, "--env", help="environment id (overrides the preset)"),
          force: bool = typer.Option(False, "--force", help="run even with error-level findings"),
          no_pretrain: bool = typer.Option(False, "--no-pretrain", help="do not build a missing checkpoint ladder"),
          grace: float = typer.Option(10.0, "--grace", help="seconds a stopping worker gets to save"),
          runs_dir: Optional[Path] = RUNS_DIR_OPT,
          json_output: bool = typer.Option(False, "--json", help="results as JSON on stdout"),
          resume: Optional[str] = typer.Option(None, "--resume", metavar="SWEEP",
                                               help="continue sweep SWEEP (its id): skip done runs, resume "
                                                    "stopped and failed ones, start the rest")) -> None:
    """Many runs (seeds x grid), at most --parallel at once; one table of results at the end.

    Overrides for every run go after the preset as for `run`: `playground sweep gae-ppo --seeds 0-2 --gamma 0.9`."""
    _check_backend_flags(backend, address, cpus_per_run, gpus_per_run, ray_dashboard)
    root = ensure_runs_dir(runs_dir_of(ctx, runs_dir))
    record = None
    if resume is not None:  # the sweep's own arguments, as recorded when it started
        if preset or ctx.args or grid:
            raise CliError("--resume continues a sweep with its recorded preset, overrides, seeds and grid: "
                           f"give none of them (got {' '.join([preset or '', *ctx.args, *grid]).strip()})")
        record = load_sweep(root, resume)
        a = sweep_arguments(record)
        preset, seeds, grid, env, force = a["preset"], a["seeds"], a["grid"], a["env"], force or a["force"]
        ctx.args[:] = a["overrides"]
    elif not preset:
        raise CliError("no preset given: `playground sweep PRESET --seeds 0-4 ...`, or `playground sweep --resume SWEEP`")
    # on Ray the device follows --gpus-per-run (set after planning: the launcher needs no GPU)
    overrides, device = ray_device(ctx.args, gpus_per_run) if backend == "ray" else (ctx.args, None)
    sp = _plan(lambda: plan_sweep(preset, overrides, seeds=seeds, grid=grid, env=env, runs_dir=root),
               root, no_pretrain, json_output)
    _show_findings(sp, force, json_output)
    fallback = ["sweep", preset, *ctx.args, "--seeds", seeds] + [a for g in grid for a in ("--grid", g)]
    sp.set_device(device)
    jobs: list[Job] = sp.jobs(root, command=command_line(fallback))
    be = _backend(backend, sp, parallel, address, ray_dashboard, cpus_per_run, gpus_per_run, grace, json_output)
    record, counts = begin_sweep(record, jobs, root, preset=preset, overrides=ctx.args, seeds=seeds, grid=grid,
                                 env=env, force=force)
    if counts is not None:
        say(f"resuming sweep {record.id}: {counts['done']} done, {counts['resume']} to resume, {counts['follow']} "
            f"still running, {counts['new']} to start", json_mode=json_output)
    say(f"sweep {record.id} (continue it later with `playground sweep --resume {record.id}`)", json_mode=json_output)
    retries = default_retries(backend, max_retries)
    sched = Scheduler(jobs, parallel=parallel, backend=be, max_retries=retries)
    n_pts, n_seeds = len(sp.points), len(sp.seeds)
    say(f"sweep {preset}: {n_pts} grid point{'s' if n_pts != 1 else ''} x {n_seeds} seed"
        f"{'s' if n_seeds != 1 else ''} = {len(jobs)} runs, {parallel} at once ({be.name})", json_mode=json_output)
    live = console(stderr=json_output).is_terminal and not json_output
    interrupted = _run(sched, jobs, retries, grace, live, json_output)
    _report(jobs, sp, record.id, interrupted, live, json_output)


def _check_backend_flags(backend: str, address: str | None, cpus_per_run: float | None, gpus_per_run: float | None,
                         ray_dashboard: bool) -> None:
    """--backend and the flags only Ray takes (--address parsed here: a bad one is one line)."""
    if backend not in ("local", "ray"):
        raise CliError(f"--backend {backend!r}: use local or ray")
    if backend == "ray" and not ray_available():
        raise CliError("--backend ray needs the `ray` package, which is not installed here: "
                       "pip install 'offline-rl-playground[ray]', or use --backend local")
    ray_only = [n for n, v in (("--address", address), ("--cpus-per-run", cpus_per_run),
                                ("--gpus-per-run", gpus_per_run), ("--ray-dashboard", ray_dashboard or None)) if v is not None]
    if ray_only and backend != "ray":
        raise CliError(f"{', '.join(ray_only)} {'is' if len(ray_only) == 1 else 'are'} for --backend ray")
    if address is not None:
        # loaded here, not at the top: the Ray modules add ~75 ms to every `playground` start
        # (python -X importtime), and only --backend ray needs them
        from engine.launcher import RayClusterError, parse_address

        try:
            parse_address(address)
        except RayClusterError as e:
            raise CliError(str(e)) from None


def _plan(plan: Callable[[], SweepPlan], root: Path, no_pretrain: bool, json_output: bool) -> SweepPlan:
    """Plan (load and validate) every run first; build missing ladders (unless --no-pretrain) and plan again."""
    sp = plan()
    if ensure_ladders(missing_by_env(sp), pretrain=not no_pretrain, runs_dir=root, json_mode=json_output):
        sp = plan()
        if sp.missing:
            env_id, key, role = sp.missing[0]
            raise still_missing(env_id, f"'{role}' ({key})")
    return sp


def _show_findings(sp: SweepPlan, force: bool, json_output: bool) -> None:
    """The validator's findings over every grid point; error-level ones refuse the sweep (exit 3) unless forced."""
    by_id = sp.findings_by_id()
    if by_id:
        allf = [f for f, _ in by_id]
        n = len(sp.points)
        typer.echo(f"validator: {counts(allf)} (over {n} grid point{'s' if n != 1 else ''})", err=json_output)
        print_findings(allf, err=json_output)
        if n > 1:
            for f, labels in by_id:
                typer.echo(f"    {f.id} at: {'; '.join(labels)}", err=json_output)
    errors = sp.errors
    if errors and not force:
        if json_output:
            print_json({"ok": False, "refused": True, "findings": [f.to_dict() for f, _ in by_id]})
        typer.echo(f"refused: error-level findings ({', '.join(f.id for f in errors)}); apply the fix flags "
                   "above, or pass --force", err=True)
        raise typer.Exit(EXIT_REFUSED)


def _backend(backend: str, sp: SweepPlan, parallel: int, address: str | None, ray_dashboard: bool,
             cpus_per_run: float | None, gpus_per_run: float | None, grace: float, json_output: bool):
    """A Ray backend (joined or started), or the local one after checking this machine can run `parallel` at once."""
    if backend != "ray":
        check_parallel([pl.cfg for pl in sp.plans], parallel)  # this machine runs them all
        return LocalBackend()
    from engine.launcher import RayClusterError, open_ray_backend  # Ray modules: see _check_backend_flags

    try:
        be = open_ray_backend(address, dashboard=ray_dashboard, cpus_per_run=cpus_per_run or 1.0,
                              gpus_per_run=gpus_per_run or 0.0, grace_s=grace)
    except RayClusterError as e:
        raise CliError(str(e)) from None
    say(f"ray: {be.describe()}", json_mode=json_output)
    return be


def _run(sched: Scheduler, jobs: list[Job], retries: int, grace: float, live: bool, json_output: bool) -> bool:
    """Run the sweep to its end (a live table on a terminal, else a line per event); True when interrupted
    (every worker is then stopped, with up to `grace` seconds to save)."""
    def on_event(job: Job, what: str) -> None:
        if live:
            return
        if what == "started":
            say(f"started {job.run_dir.name} ({point_label(job.point)}, seed {job.seed})", json_mode=json_output)
        elif what == "retried":
            say(f"retried {job.run_dir.name} ({job.retries}/{retries}): {job.failures[-1]}", json_mode=json_output)
        else:
            s = job.summary
            say(f"ended   {job.run_dir.name}: {s.status}, peak SR {pct(s.peak_sr)}, final SR {pct(s.last_sr)}",
                json_mode=json_output)

    interrupted = False
    try:
        with interrupt_on_termination():
            try:
                if live:
                    with Live(get_renderable=lambda: Group(jobs_table(jobs)), console=console(stderr=json_output),
                              refresh_per_second=2):
                        drive(sched, on_event)
                else:
                    drive(sched, on_event)
            except KeyboardInterrupt:
                interrupted = True
                say(f"interrupted: stopping {len(sched.active)} worker(s) (up to {grace:g}s to save) ...",
                    json_mode=True)
                sched.stop_all(grace)
    finally:
        if not sched.finished:
            sched.stop_all(grace)
        sched.close()
    return interrupted


def _report(jobs: list[Job], sp: SweepPlan, sweep_id: str, interrupted: bool, live: bool, json_output: bool) -> None:
    """The results (a table and lines, or JSON) and the exit: 130 interrupted, 1 a run failed, else 0."""
    res = point_results(jobs, sp.points)
    failed = any(j.summary and j.summary.status == "failed" for j in jobs)
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILED if failed else EXIT_OK
    if json_output:
        print_json({"ok": code == EXIT_OK, "interrupted": interrupted, "sweep": sweep_id, "points": res,
                    "runs": run_rows(jobs)})
    else:
        if not live:
            console().print(jobs_table(jobs))
        console().print(results_table(res, len(sp.seeds)))
        for line in failure_lines(jobs):
            typer.echo(line)
        sweep_doctor([j.run_dir for j in jobs if j.summary and j.run_dir])
        if interrupted:
            typer.echo("interrupted: runs that had not started were skipped; continue the sweep with "
                       f"`playground sweep --resume {sweep_id}`")
    raise typer.Exit(code)
