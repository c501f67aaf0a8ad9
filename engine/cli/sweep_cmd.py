"""`playground sweep`: seeds x grid points of one preset, at most N workers at once, and one
table at the end: per grid point the IQM over seeds with its 95% bootstrap CI of final SR, peak
SR and SR at end (engine.analysis.stats), and the final SR's mean +- std; `--json` carries the
statistics blocks (`final_sr`, `peak_sr`, `sr_at_end`: n, mean, iqm, median, min, max, ci95).

Every combination is loaded and validated before anything starts (unusable input: exit 2;
error-level findings: exit 3 unless --force). Exit 0 when every run is done, 1 when one
failed, 130 when interrupted (every worker is stopped cleanly first).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.launcher import (Job, LocalBackend, Scheduler, check_parallel, diagnose_run, load_sweep, new_sweep,
                             pct_ci, peak_sr, plan_sweep, point_label, point_stats, ray_available, ray_device,
                             resume_jobs, track)

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


def results(jobs: list[Job], points: list[dict]) -> list[dict]:
    out = []
    for pt in points:
        sums = [j.summary for j in jobs if j.point == pt and j.summary is not None]
        out.append({"point": pt, "label": point_label(pt), "runs": [s.id for s in sums],
                    "seeds": [j.seed for j in jobs if j.point == pt and j.summary is not None],
                    "n_retried": sum(1 for j in jobs if j.point == pt and j.retries), **point_stats(sums)})
    return out


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
        from engine.launcher import RayClusterError, parse_address

        try:
            parse_address(address)
        except RayClusterError as e:
            raise CliError(str(e)) from None
    root = ensure_runs_dir(runs_dir_of(ctx, runs_dir))
    record = None
    if resume is not None:  # the sweep's own arguments, as recorded when it started
        if preset or ctx.args or grid:
            raise CliError("--resume continues a sweep with its recorded preset, overrides, seeds and grid: "
                           f"give none of them (got {' '.join([preset or '', *ctx.args, *grid]).strip()})")
        record = load_sweep(root, resume)
        preset, seeds, grid, env = record.preset, record.seeds, list(record.grid), record.env
        force = force or record.force
        ctx.args[:] = list(record.overrides)
    elif not preset:
        raise CliError("no preset given: `playground sweep PRESET --seeds 0-4 ...`, or `playground sweep --resume SWEEP`")
    # on Ray the device follows --gpus-per-run (set after planning: the launcher needs no GPU)
    overrides, device = ray_device(ctx.args, gpus_per_run) if backend == "ray" else (ctx.args, None)

    # plan (load and validate) every run first
    def plan():
        return plan_sweep(preset, overrides, seeds=seeds, grid=grid, env=env, runs_dir=root)

    sp = plan()
    missing: dict[str, list[str]] = {}
    for env_id, key, role in sp.missing:
        missing.setdefault(env_id, []).append(f"'{role}' ({key})")
    if ensure_ladders({e: ", ".join(r) for e, r in missing.items()}, pretrain=not no_pretrain, runs_dir=root,
                      json_mode=json_output):
        sp = plan()
        if sp.missing:
            env_id, key, role = sp.missing[0]
            raise still_missing(env_id, f"'{role}' ({key})")
    points, seed_list = sp.points, sp.seeds
    by_id = sp.findings_by_id()
    if by_id:
        allf = [f for f, _ in by_id]
        typer.echo(f"validator: {counts(allf)} (over {len(points)} grid point{'s' if len(points) != 1 else ''})",
                   err=json_output)
        print_findings(allf, err=json_output)
        if len(points) > 1:
            for f, labels in by_id:
                typer.echo(f"    {f.id} at: {'; '.join(labels)}", err=json_output)
    errors = sp.errors
    if errors and not force:
        if json_output:
            print_json({"ok": False, "refused": True, "findings": [f.to_dict() for f, _ in by_id]})
        typer.echo(f"refused: error-level findings ({', '.join(f.id for f in errors)}); apply the fix flags "
                   "above, or pass --force", err=True)
        raise typer.Exit(EXIT_REFUSED)

    fallback = ["sweep", preset, *ctx.args, "--seeds", seeds] + [a for g in grid for a in ("--grid", g)]
    sp.set_device(device)
    jobs: list[Job] = sp.jobs(root, command=command_line(fallback))
    if backend == "ray":
        from engine.launcher import RayClusterError, open_ray_backend

        try:
            be = open_ray_backend(address, dashboard=ray_dashboard, cpus_per_run=cpus_per_run or 1.0,
                                  gpus_per_run=gpus_per_run or 0.0, grace_s=grace)
        except RayClusterError as e:
            raise CliError(str(e)) from None
        say(f"ray: {be.describe()}", json_mode=json_output)
    else:
        check_parallel([pl.cfg for pl in sp.plans], parallel)  # this machine runs them all
        be = LocalBackend()
    if record is None:
        record = new_sweep(root, preset, overrides=list(ctx.args), seeds=seeds, grid=list(grid), env=env, force=force)
        record.save(root)
    else:
        c = resume_jobs(record, jobs, root)
        say(f"resuming sweep {record.id}: {c['done']} done, {c['resume']} to resume, {c['follow']} still running, "
            f"{c['new']} to start", json_mode=json_output)
    track(record, jobs, root)
    say(f"sweep {record.id} (continue it later with `playground sweep --resume {record.id}`)", json_mode=json_output)
    retries = max_retries if max_retries is not None else (1 if backend == "ray" else 0)
    sched = Scheduler(jobs, parallel=parallel, backend=be, max_retries=retries)
    say(f"sweep {preset}: {len(points)} grid point{'s' if len(points) != 1 else ''} x {len(seed_list)} seed"
        f"{'s' if len(seed_list) != 1 else ''} = {len(jobs)} runs, {parallel} at once ({be.name})", json_mode=json_output)
    interrupted = False
    con = console(stderr=json_output)
    live = con.is_terminal and not json_output
    try:
        with interrupt_on_termination():
            try:
                def tick() -> None:
                    for job, what in sched.step():
                        if live:
                            continue
                        if what == "started":
                            say(f"started {job.run_dir.name} ({point_label(job.point)}, seed {job.seed})",
                                json_mode=json_output)
                        elif what == "retried":
                            say(f"retried {job.run_dir.name} ({job.retries}/{retries}): {job.failures[-1]}",
                                json_mode=json_output)
                        else:
                            s = job.summary
                            say(f"ended   {job.run_dir.name}: {s.status}, peak SR {pct(s.peak_sr)}, "
                                f"final SR {pct(s.last_sr)}", json_mode=json_output)

                if live:
                    with Live(get_renderable=lambda: Group(jobs_table(jobs)), console=con, refresh_per_second=2):
                        while not sched.finished:
                            tick()
                            time.sleep(0.5)
                else:
                    while not sched.finished:
                        tick()
                        time.sleep(0.5)
            except KeyboardInterrupt:
                interrupted = True
                say(f"interrupted: stopping {len(sched.active)} worker(s) (up to {grace:g}s to save) ...",
                    json_mode=True)
                sched.stop_all(grace)
    finally:
        if not sched.finished:
            sched.stop_all(grace)
        sched.close()
    res = results(jobs, points)
    failed = any(j.summary and j.summary.status == "failed" for j in jobs)
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILED if failed else EXIT_OK
    if json_output:
        print_json({"ok": code == EXIT_OK, "interrupted": interrupted, "sweep": record.id, "points": res,
                    "runs": [dict(j.summary.to_dict(), retries=j.retries, retried_after=j.failures,
                                  doctor=[d.to_dict() for d in diagnose_run(j.run_dir)] if j.run_dir else [])
                             for j in jobs if j.summary]})
    else:
        if not live:
            console().print(jobs_table(jobs))
        console().print(results_table(res, len(seed_list)))
        for line in failure_lines(jobs):
            typer.echo(line)
        sweep_doctor([j.run_dir for j in jobs if j.summary and j.run_dir])
        if interrupted:
            typer.echo("interrupted: runs that had not started were skipped; continue the sweep with "
                       f"`playground sweep --resume {record.id}`")
    raise typer.Exit(code)
