"""`playground budget`: the seed's Phase 1c experiment (final SR vs online budget for offline,
online and offline->online; engine.launcher.budget), a table and a figure."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from engine.launcher import DEFAULT_BUDGETS, parse_budgets, parse_seeds, run_budget, save_budget_figure

from .common import ensure_runs_dir, pct, print_json, runs_dir_of
from .errors import CliError, cli_errors


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items or []:
        key, sep, value = it.partition("=")
        if not sep or not key.strip():
            raise CliError([f"{flag} {it!r}: write KEY=VALUE, e.g. {flag} num_eval_envs=200"])
        out[key.strip()] = value.strip()
    return out


@cli_errors
def budget(ctx: typer.Context,
           online_preset: str = typer.Option("online-mc16-awr", "--online-preset", help="the online arm's preset"),
           offline_preset: str = typer.Option("offline-mc16-awr", "--offline-preset", help="the offline arm's preset"),
           budgets: str = typer.Option(",".join(str(b) for b in DEFAULT_BUDGETS), "--budgets",
                                       help="online env-step budgets, e.g. 10k,25k,50k"),
           seeds: str = typer.Option("0-2", "--seeds", help="seeds, e.g. 0-7"),
           env: Optional[str] = typer.Option(None, "--env", help="environment id (default: the presets')"),
           parallel: int = typer.Option(1, "--parallel", help="runs at once"),
           online: Optional[List[str]] = typer.Option(None, "--online", help="KEY=VALUE override of the online arms"),
           offline: Optional[List[str]] = typer.Option(None, "--offline", help="KEY=VALUE override of the offline arm"),
           out: Path = typer.Option(Path("figures/budget.png"), "--out", help="the figure (.png, .svg or .pdf)"),
           json_output: bool = typer.Option(False, "--json", help="the result as JSON on stdout"),
           runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="runs directory")) -> None:
    """The seed's Phase 1c: final SR against the online budget for offline, online and offline->online."""
    if parallel < 1:
        raise CliError([f"--parallel {parallel}: give at least 1"])
    root = ensure_runs_dir(runs_dir_of(ctx, runs_dir))
    say = (lambda m: typer.echo(m, err=True)) if json_output else typer.echo
    res = run_budget(online_preset=online_preset, offline_preset=offline_preset, budgets=parse_budgets(budgets),
                     seeds=parse_seeds(seeds), runs_dir=root, env=env, parallel=parallel,
                     online_overrides=_pairs(online, "--online"), offline_overrides=_pairs(offline, "--offline"),
                     on_event=say)
    fig = save_budget_figure(res["points"], out)
    if json_output:
        print_json({**res, "figure": str(fig)})
        return
    typer.echo(f"{'arm':<16} {'budget':>8} {'n':>3} {'final SR':>9}  95% CI")
    for p in res["points"]:
        ci = p["ci95"]
        typer.echo(f"{p['arm']:<16} {p['budget']:>8} {p['n']:>3} {pct(p['mean']):>9}  "
                   + (f"[{pct(ci[0])}, {pct(ci[1])}]" if ci else "-"))
    typer.echo(f"wrote {fig} and {res['json']}")
