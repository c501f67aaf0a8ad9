"""`playground analyze ...`: analyses that measure the seed's findings (typer sub-app `analyze_app`).

`playground analyze ranking` runs `engine.analysis.ranking.run_ranking`: how well GAE, MC-1,
MC-16, IQL Q-V, NN-regressed advantages and IQL-V+GAE rank a state's candidate actions against
Monte-Carlo ground truth (the seed's known issues 8 and 9). It prints a table and writes JSON
(`<runs dir>/analysis/ranking-<timestamp>.json` unless `--json-out`). Unusable input (unknown
role with no ladder, unknown env, bad sizes) is one `error: ...` line and exit code 2.

The app registers this sub-app as `playground analyze` (engine/cli/app.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from engine.errors import UserError

from .errors import EXIT_USAGE

analyze_app = typer.Typer(
    help="Analyses of the seed's findings (advantage ranking: known issues 8 and 9).",
    no_args_is_help=True,
    add_completion=False,
)

# Sizes: (full, --quick)
_SIZES = {
    "states": (64, 16),
    "actions": (8, 4),
    "gt_rollouts": (128, 32),
    "iql_steps": (10_000, 1_000),
    "critic_episodes": (256, 64),
    "regress_pairs": (4096, 1024),
}


@analyze_app.callback()
def _analyze() -> None:
    """Analyses of the seed's findings."""


def _fail(msg: str) -> None:
    typer.echo(f"error: {' '.join(str(msg).split())}", err=True)
    raise typer.Exit(EXIT_USAGE)


@analyze_app.command("ranking")
def ranking(
    env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
    policy: str = typer.Option("start", "--policy",
                               help="policy whose states and actions are ranked: role, seed name, path, or 'none'"),
    critic: str = typer.Option("critic-expert", "--critic",
                               help="critic for the GAE row: role, seed name, path, or 'none' = fit one on the "
                                    "policy's MC returns"),
    states: Optional[int] = typer.Option(None, "--states", help="visited states (default 64, --quick 16)"),
    actions: Optional[int] = typer.Option(None, "--actions", help="candidate actions per state (default 8, --quick 4)"),
    gt_rollouts: Optional[int] = typer.Option(None, "--gt-rollouts",
                                              help="MC rollouts per candidate for the ground truth (default 128, "
                                                   "--quick 32)"),
    gamma: float = typer.Option(0.8, "--gamma", help="discount"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    iql_steps: Optional[int] = typer.Option(None, "--iql-steps", help="IQL gradient steps (default 10000, --quick 1000)"),
    estimators: Optional[str] = typer.Option(None, "--only",
                                             help="comma-separated subset of gae,mc1,mc16,iql,nn_mc16,iql_v_gae"),
    json_out: Optional[Path] = typer.Option(None, "--json-out",
                                            help="where to write the JSON (default runs/analysis/ranking-<time>.json)"),
    quick: bool = typer.Option(False, "--quick", help="small sizes: a quick look in about a minute"),
) -> None:
    """How well each advantage estimator ranks a state's candidate actions (vs MC ground truth)."""
    from rich.console import Console

    from engine.analysis.ranking import run_ranking

    from .ranking_view import print_ranking

    pick = 1 if quick else 0
    size = lambda key, given: _SIZES[key][pick] if given is None else given  # noqa: E731
    only = None
    if estimators:
        only = [e.strip() for e in estimators.split(",") if e.strip()]
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    t0 = time.perf_counter()

    def progress(info: dict) -> None:
        err.print(f"[dim][{info.get('elapsed_s', time.perf_counter() - t0):6.1f}s] {info.get('message', '')}[/dim]")

    try:
        result = run_ranking(
            env, policy=policy, critic=critic, num_states=size("states", states),
            num_actions=size("actions", actions), gt_rollouts=size("gt_rollouts", gt_rollouts), gamma=gamma,
            seed=seed, iql_steps=size("iql_steps", iql_steps), critic_episodes=_SIZES["critic_episodes"][pick],
            regress_pairs=_SIZES["regress_pairs"][pick], estimators=only, json_out=json_out, progress=progress)
    except UserError as e:
        _fail("; ".join(e.lines()))
    except ImportError as e:
        _fail(f"environment {env!r} cannot be built here ({e})")
    except OSError as e:
        _fail(f"cannot write the analysis JSON: {e}")
    print_ranking(result, out)
    sys.stdout.flush()


__all__ = ["analyze_app"]
