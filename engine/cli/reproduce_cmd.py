"""`playground reproduce`: the seed's Best Configurations table, re-run here (engine.analysis.reproduce)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.config.limits import MAX_SWEEP_RUNS
from engine.launcher import plan_run

from .common import ensure_runs_dir, runs_dir_of
from .errors import CliError, cli_errors
from .following import ensure_ladders, still_missing


@cli_errors
def reproduce(ctx: typer.Context,
              env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
              seeds: int = typer.Option(3, "--seeds", help="number of seeds per row (0..N-1)"),
              quick: bool = typer.Option(False, "--quick", help="short runs: a smoke pass, not a result"),
              parallel: int = typer.Option(1, "--parallel", help="runs at once (each worker uses its own process)"),
              only: Optional[str] = typer.Option(None, "--only", help="comma-separated presets of the table to run"),
              out: Path = typer.Option(Path("docs/results.md"), "--out", help="where the comparison is written"),
              runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="runs directory")) -> None:
    """Run the seed's "Best Configurations" rows for N seeds and write docs/results.md."""
    from engine.analysis.reproduce import BEST_CONFIGURATIONS, reproduce as run_table

    if not 1 <= seeds <= MAX_SWEEP_RUNS:
        raise CliError([f"--seeds {seeds}: give between 1 and {MAX_SWEEP_RUNS} seeds"])
    names = [r[3] for r in BEST_CONFIGURATIONS]
    chosen = None
    if only:
        chosen = [x.strip() for x in only.split(",") if x.strip()]
        bad = [x for x in chosen if x not in names]
        if bad:
            raise CliError([f"--only {', '.join(bad)}: not a row of the table; choose from {', '.join(names)}"])
    root = ensure_runs_dir(runs_dir_of(ctx, runs_dir))
    for name in chosen or names:  # the ladder: built once, before any run starts
        p = plan_run(name, env=env)
        if ensure_ladders({p.env: p.missing_text()} if p.missing else {}, pretrain=True, runs_dir=root,
                          json_mode=False):
            p = plan_run(name, env=env)
            if p.missing:
                raise still_missing(p.env, p.missing_text())
    results = run_table(env=env, seeds=list(range(seeds)), quick=quick, runs_dir=root, out=out, parallel=parallel,
                        presets=chosen, on_event=lambda m: typer.echo(m))
    for r in results:
        m, s = r.stat("peak_sr")
        typer.echo(f"{r.preset:<20} seed {100 * r.seed_sr:5.1f}%   ours "
                   f"{'-' if m is None else f'{100 * m:5.1f}% ± {100 * s:.1f}'}")
    typer.echo(f"wrote {out}")
