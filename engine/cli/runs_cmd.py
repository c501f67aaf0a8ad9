"""`playground runs`, `show`, `compare` and `stop`: looking at and stopping runs, whoever
started them (the launcher reads the runs directory; dead workers are reconciled)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from engine.launcher import (METRICS, TERMINAL, config_text, curve_of_run, group_curves, group_runs, is_iteration_row,
                             list_runs, p_improve, parsed_config, pct_ci, read_config, read_findings, read_metrics,
                             read_status, reconcile, resolve_run, run_values, save_sr_figure, stall_fields, stop_run,
                             summarize_run)
from engine.launcher import block as stats_block

from .common import console, duration, num, pct, print_json, runs_dir_of
from .errors import EXIT_FAILED, EXIT_OK, CliError, cli_errors
from .live import ProgressView, summary_table
from .plots import sr_plot
from .run_cmd import RUNS_DIR_OPT

STATUS_STYLE = {"done": "green", "failed": "red", "stopped": "yellow", "running": "cyan", "queued": "dim"}


@cli_errors
def runs(ctx: typer.Context, runs_dir: Optional[Path] = RUNS_DIR_OPT,
         json_output: bool = typer.Option(False, "--json", help="a JSON list on stdout")) -> None:
    """Every run under the runs directory: id, preset, status, iteration, env steps, last SR, peak SR."""
    root = runs_dir_of(ctx, runs_dir)
    rows = list_runs(root)
    if json_output:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        typer.echo(f"no runs in {root} yet: start one with `playground run PRESET`")
        return
    t = Table(title=f"runs in {root}", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    # the id starts with the creation time and ends with the exp_name: no separate columns for them
    t.add_column("id", no_wrap=True)
    t.add_column("preset", overflow="fold")
    for col in ("status", "iter", "env steps", "last SR", "peak SR"):
        t.add_column(col, justify="left" if col == "status" else "right", no_wrap=True, min_width=len(col))
    for r in rows:
        it = "-" if r.iteration is None else f"{r.iteration}" + (f"/{r.planned_iterations}" if r.planned_iterations else "")
        t.add_row(r.id, r.preset or "-", Text(r.status_label, style=STATUS_STYLE.get(r.status, "")),
                  it, num(r.env_steps), pct(r.last_sr), pct(r.peak_sr))
    console().print(t)


def metrics_table(rows: list[dict], limit: int = 25) -> Table:
    """Per-iteration rows (evenly thinned to about `limit`, first and last always kept)."""
    t = Table(title="per-iteration results", title_justify="left")
    for col in ("iteration", "env steps", "wall", "SR", "SR at end"):
        t.add_column(col, justify="right")
    if len(rows) > limit:
        step = (len(rows) - 1) / (limit - 1)
        idx = sorted({round(i * step) for i in range(limit)})
        shown = [rows[i] for i in idx]
    else:
        shown = rows
    for r in shown:
        w = r.get("wall_s")
        t.add_row(str(r.get("iteration", "-")), num(r.get("env_steps")),
                  duration(w if isinstance(w, (int, float)) else None), pct(r.get("sr")), pct(r.get("sr_at_end")))
    if len(rows) > limit:
        t.caption = f"{len(shown)} of {len(rows)} rows shown; all of them in metrics.jsonl"
    return t


@cli_errors
def show(ctx: typer.Context, run: str = typer.Argument(..., help="run id, a unique prefix of one, or a path"),
         runs_dir: Optional[Path] = RUNS_DIR_OPT,
         width: int = typer.Option(60, "--width", help="chart width in characters"),
         height: int = typer.Option(15, "--height", help="chart height in lines"),
         json_output: bool = typer.Option(False, "--json", help="summary and metrics as JSON on stdout"),
         config: bool = typer.Option(False, "--config", help="only the run's resolved config.toml, as written")) -> None:
    """A run's summary, its SR-vs-env-steps chart, findings at launch and per-iteration table."""
    run_dir = resolve_run(run, runs_dir_of(ctx, runs_dir))
    if config:  # (with --json: the config as one JSON object)
        if json_output:
            print_json(parsed_config(run_dir))
        else:
            typer.echo(config_text(run_dir), nl=False)
        return
    s = summarize_run(run_dir)
    rows = read_metrics(run_dir)
    findings = read_findings(run_dir)
    if json_output:
        print_json({"run": s.to_dict(), "config": read_config(run_dir), "findings": findings, "metrics": rows})
        return
    con = console()
    status = reconcile(run_dir, write=False) or {}  # a dead worker: failed
    con.print(summary_table(run_dir, {**status, **stall_fields(run_dir, status, rows)}, rows))
    if findings:
        con.print(Text("findings at launch: " + "; ".join(f"{f.get('id')} ({f.get('severity')}) {f.get('title')}"
                                                          for f in findings), style="yellow"))
    typer.echo(sr_plot([curve_of_run(run_dir, label=s.exp_name or s.id)], width=width, height=height,
                       title=f"SR vs env steps: {s.id}", color=con.is_terminal), nl=False)
    iters = [r for r in rows if is_iteration_row(r)]
    if iters:
        con.print(metrics_table(iters))
    for note in (r for r in rows if not is_iteration_row(r)):  # a pretraining job's ladder roles
        typer.echo(ProgressView.note_line(note))


@cli_errors
def compare(ctx: typer.Context, runs_: List[str] = typer.Argument(..., metavar="RUN RUN ...",
                                                                   help="two or more run ids, prefixes or paths"),
            runs_dir: Optional[Path] = RUNS_DIR_OPT,
            group: bool = typer.Option(False, "--group", help="group runs by configuration (all keys but the "
                                       "seed): one line per group, the IQM over seeds with its 95% CI band"),
            width: int = typer.Option(70, "--width", help="chart width in characters"),
            height: int = typer.Option(18, "--height", help="chart height in lines"),
            out: Optional[Path] = typer.Option(None, "--out", metavar="FILE.png|.svg|.pdf",
                                               help="also write the figure (matplotlib) to this file"),
            dpi: int = typer.Option(100, "--dpi", help="resolution of a PNG --out (300 for print)"),
            json_output: bool = typer.Option(False, "--json", help="JSON on stdout")) -> None:
    """Several runs in one SR-vs-env-steps chart, a table of their results and their config differences.

    `--out FILE.png` (or .svg, .pdf) also writes the figure: axes, legend, the presets' expected SR dashed.
    `--group`: runs that differ only in the seed are one curve (IQM over seeds, its 95% bootstrap CI as a band)
    and one table row (n, IQM [95% CI] and mean of final SR, peak SR, SR at end)."""
    root = runs_dir_of(ctx, runs_dir)
    dirs = list(dict.fromkeys(resolve_run(r, root) for r in runs_))
    if len(dirs) < 2:
        raise CliError("compare needs two or more different runs (use `playground show RUN` for one)")
    if group:
        return compare_groups(dirs, width=width, height=height, out=out, dpi=dpi, json_output=json_output)
    sums = [summarize_run(d) for d in dirs]
    confs = [read_config(d) for d in dirs]
    skip = {"command", "exp_name"}
    keys = sorted({k for c in confs for k in c} - skip)
    diff = [k for k in keys if len({repr(c.get(k)) for c in confs}) > 1]
    curves = [curve_of_run(d) for d in dirs]
    written = save_sr_figure(curves, out, title="Success rate vs env steps", dpi=dpi) if out is not None else None
    if json_output:
        print_json({"runs": [s.to_dict() for s in sums],
                    "config_differences": {k: [c.get(k) for c in confs] for k in diff},
                    "figure": str(written) if written else None})
        return
    con = console()
    typer.echo(sr_plot(curves, width=width, height=height, title="SR vs env steps", color=con.is_terminal), nl=False)
    t = Table(title="results", title_justify="left")
    for col, just in (("run", "left"), ("preset", "left"), ("status", "left"), ("iter", "right"),
                      ("env steps", "right"), ("last SR", "right"), ("peak SR", "right"), ("peak at steps", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for s in sums:
        t.add_row(s.id, s.preset or "-", Text(s.status, style=STATUS_STYLE.get(s.status, "")), num(s.iteration),
                  num(s.env_steps), pct(s.last_sr), pct(s.peak_sr), num(s.peak_env_steps))
    con.print(t)
    if diff:
        d = Table(title="config differences", title_justify="left")
        d.add_column("key")
        for s in sums:
            d.add_column(s.id, overflow="fold")
        for k in diff:
            d.add_row(k, *[str(c.get(k, "-")) for c in confs])
        con.print(d)
    else:
        con.print("config: identical (apart from exp_name and command)")
    if written:
        typer.echo(f"figure: {written}")


def group_results(dirs: list[Path]) -> tuple[list[dict], list[dict]]:
    """Per configuration its statistics block; per pair of groups P(final SR of X > Y) with its CI."""
    groups = []
    for g in group_runs(dirs):
        vals = [run_values(d) for d in g.run_dirs]
        groups.append({"label": g.label, "preset": g.config.get("preset"), "runs": [d.name for d in g.run_dirs],
                       "seeds": [read_config(d).get("seed") for d in g.run_dirs], **stats_block(vals),
                       "_final": [v["final_sr"] for v in vals]})
    pairs = [{"x": a["label"], "y": b["label"], "metric": "final_sr", "p_improve": p_improve(a["_final"], b["_final"])}
             for i, a in enumerate(groups) for b in groups[i + 1:]]
    for g in groups:
        del g["_final"]
    return groups, pairs


def compare_groups(dirs: list[Path], *, width: int, height: int, out: Optional[Path], dpi: int,
                   json_output: bool) -> None:
    groups, pairs = group_results(dirs)
    curves = group_curves(dirs)
    written = (save_sr_figure(curves, out, title="Success rate vs env steps, by configuration", dpi=dpi)
               if out is not None else None)
    if json_output:
        print_json({"groups": groups, "pairs": pairs, "figure": str(written) if written else None})
        return
    con = console()
    typer.echo(sr_plot(curves, width=width, height=height, title="SR vs env steps (IQM over seeds; dotted: 95% CI)",
                       color=con.is_terminal), nl=False)
    t = Table(title="by configuration: IQM over seeds [95% bootstrap CI of the IQM]; mean", title_justify="left")
    for col, just in (("configuration", "left"), ("n", "right"), ("final SR", "right"), ("peak SR", "right"),
                      ("SR at end", "right"), ("final SR mean", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for g in groups:
        f = g["final_sr"] or {}
        t.add_row(g["label"], str(g["n"]), *[pct_ci(g[m]) for m in METRICS], pct(f.get("mean")))
    con.print(t)
    for p in pairs:
        if p["p_improve"] is not None:
            typer.echo(f"P(final SR of {p['x']} > {p['y']}) = {pct_ci(p['p_improve'], 'p')}")
    if written:
        typer.echo(f"figure: {written}")


@cli_errors
def stop(ctx: typer.Context, run: str = typer.Argument(..., help="run id, a unique prefix of one, or a path"),
         grace: float = typer.Option(10.0, "--grace", help="seconds the worker gets to save before SIGKILL"),
         runs_dir: Optional[Path] = RUNS_DIR_OPT,
         json_output: bool = typer.Option(False, "--json", help="the final status as JSON on stdout")) -> None:
    """Stop a running run cleanly (it saves and ends `stopped`), whoever started it."""
    run_dir = resolve_run(run, runs_dir_of(ctx, runs_dir))
    before = read_status(run_dir) or {}
    if before.get("status") in TERMINAL:
        if json_output:
            print_json({"ok": True, "run_id": run_dir.name, "already": True, "status": before})
        else:
            typer.echo(f"run {run_dir.name} is not running: it already ended {before.get('status')}")
        raise typer.Exit(EXIT_OK)
    if not json_output:
        typer.echo(f"stopping {run_dir.name} (pid {before.get('pid') or '?'}; up to {grace:g}s for it to save) ...")
    st = stop_run(run_dir, grace_s=grace)
    if json_output:
        ok = st.get("status") in ("stopped", "done")
        print_json({"ok": ok, "run_id": run_dir.name, "status": st})
        raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
    msg = f"run {run_dir.name}: {st.get('status')}"
    if st.get("error"):
        msg += f" ({st['error'].splitlines()[0]})"
    typer.echo(msg)
    if st.get("status") == "stopped":
        conf = read_config(run_dir)
        typer.echo(f"start it again with `playground pretrain --env {conf.get('env')}`" if conf.get("kind") == "pretrain"
                   else f"resume it with `playground run --resume {run_dir.name}`")
    raise typer.Exit(EXIT_OK if st.get("status") in ("stopped", "done") else EXIT_FAILED)
