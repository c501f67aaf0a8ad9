"""`playground reproduce`: the seed's Best Configurations table, re-run here (engine.analysis.reproduce):
8 seeds per row by default, IQM with 95% bootstrap CIs; `--device cuda` runs the seeds of a row at once on a GPU."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.launcher import BEST_CONFIGURATIONS, DEFAULT_SEEDS, MAX_SWEEP_RUNS
from engine.launcher import reproduce as run_table
from engine.launcher import pct_ci, plan_run

from .common import ensure_runs_dir, runs_dir_of
from .errors import CliError, cli_errors
from .following import ensure_ladders, still_missing


@cli_errors
def reproduce(ctx: typer.Context,
              env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
              seeds: int = typer.Option(DEFAULT_SEEDS, "--seeds", help="number of seeds per row (0..N-1)"),
              quick: bool = typer.Option(False, "--quick", help="short runs: a smoke pass, not a result"),
              parallel: Optional[int] = typer.Option(None, "--parallel", min=1,
                                                     help="runs at once, each in its own process (default 1; "
                                                          "with --device cuda: all seeds of a row at once)"),
              device: str = typer.Option("cpu", "--device", help="cpu, or cuda: several seeds at once on one GPU"),
              fresh: bool = typer.Option(False, "--fresh", help="run every row x seed again instead of reusing the "
                                         "runs already done in the runs directory"),
              only: Optional[str] = typer.Option(None, "--only", help="comma-separated presets of the table to run"),
              out: Path = typer.Option(Path("docs/results.md"), "--out", help="where the comparison is written"),
              runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="runs directory")) -> None:
    """Run the seed's "Best Configurations" rows (and oracle MC1 AWR, IQL AWR offline) for N seeds and write
    docs/results.md: IQM with 95% bootstrap CIs, P(X > Y), a figure with the bands. Runs already done in the
    runs directory with the same config and seed are reused, so a second call re-writes the table."""
    if not 1 <= seeds <= MAX_SWEEP_RUNS:
        raise CliError([f"--seeds {seeds}: give between 1 and {MAX_SWEEP_RUNS} seeds"])
    if device not in ("cpu", "cuda"):
        raise CliError([f"--device {device!r}: use cpu or cuda"])
    if device == "cuda":
        # here, not at the top: torch takes ~9 s of a `playground` start (python -X importtime)
        import torch

        from engine.launcher import cuda_missing_message

        if not torch.cuda.is_available():
            raise CliError([cuda_missing_message("--device cuda")])
    parallel = parallel or (seeds if device == "cuda" else 1)
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
                        presets=chosen, device=None if device == "cpu" else device, reuse=not fresh,
                        on_event=lambda m: typer.echo(m))
    typer.echo("final SR: IQM over seeds [95% bootstrap CI]; the seed's final SR beside it")
    for r in results:
        b = r.stats
        typer.echo(f"{r.preset:<20} n={b['n']}  seed {100 * r.seed_final:5.1f}%   ours {pct_ci(b['final_sr'])}")
    typer.echo(f"wrote {out}")
