"""`playground analyze ...`: analyses that measure the seed's findings (typer sub-app `analyze_app`).

`playground analyze ranking` measures how well advantage estimators rank a state's candidate
actions against Monte-Carlo ground truth (the seed's known issues 8 and 9), under one of two
protocols (`--protocol`):

- `single-rollout` (the default): `engine.analysis.ranking.run_ranking`. One rollout per
  candidate for the estimators, a ground truth from rollouts independent of theirs, the start
  policy by default. Kept as the default because its truth shares no noise with the estimators.
- `seed`: `engine.analysis.ranking_seed.run_seed_ranking` (through engine.launcher), the seed's
  own protocol (optimal policy, K actions, M rollouts each, GAE/TD(n) on the truth's rollouts),
  whose numbers are comparable with the seed's README tables; `--m-scaling` and
  `--network-sizes` add the seed's two other tables.

It prints a table and writes JSON (`<runs dir>/analysis/ranking-<timestamp>.json` unless
`--json-out`); `--json` prints one JSON object instead of the table. Unusable input (unknown role
with no ladder, unknown env, bad sizes) is one `error: ...` line and exit code 2.

The app registers this sub-app as `playground analyze` (engine/cli/app.py).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

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


# Seed protocol sizes: (full, --quick)
_SEED_SIZES = {
    "states": (128, 16), "K": (8, 4), "M": (10, 4), "eval_episodes": (64, 16), "train_episodes": (256, 32),
    "iql_max_steps": (4000, 300), "critic_epochs": (100, 10), "nn_epochs": (200, 20),
}
PROTOCOLS = ("single-rollout", "seed")


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        _fail(f"{what} must be a comma-separated list of integers, got {text!r}")
    if not vals:
        _fail(f"{what} must name at least one value, got {text!r}")
    return vals


@analyze_app.command("ranking")
def ranking(
    protocol: str = typer.Option("single-rollout", "--protocol",
                                 help="single-rollout (one rollout per action, independent truth) or seed (the "
                                      "seed's: K actions x M rollouts, estimators on the truth's rollouts)"),
    env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
    policy: Optional[str] = typer.Option(None, "--policy",
                                         help="policy whose states and actions are ranked: role, seed name, path, "
                                              "or 'none' (default: start; optimal with --protocol seed)"),
    critic: str = typer.Option("critic-expert", "--critic",
                               help="single-rollout: critic for the GAE row: role, seed name, path, or 'none' = fit "
                                    "one on the policy's MC returns"),
    states: Optional[int] = typer.Option(None, "--states", help="states (default 64, seed 128; --quick 16)"),
    actions: Optional[int] = typer.Option(None, "--actions", "-K",
                                          help="candidate actions per state K (default 8, --quick 4)"),
    rollouts: Optional[int] = typer.Option(None, "--rollouts", "-M",
                                           help="seed: MC rollouts M per (state, action) (default 10, --quick 4)"),
    td_n: str = typer.Option("1,5,20", "--td-n", help="seed: the n of the TD(n) rows, comma-separated"),
    m_scaling: bool = typer.Option(False, "--m-scaling", help="seed: add the M = 1,2,4,8,16 table"),
    network_sizes: bool = typer.Option(False, "--network-sizes", help="seed: add the 256/512/1024 width table"),
    gt_rollouts: Optional[int] = typer.Option(None, "--gt-rollouts",
                                              help="single-rollout: MC rollouts per candidate for the ground truth "
                                                   "(default 128, --quick 32)"),
    gamma: float = typer.Option(0.8, "--gamma", help="discount"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    iql_steps: Optional[int] = typer.Option(None, "--iql-steps",
                                            help="IQL gradient steps (default 10000, seed 4000; --quick less)"),
    estimators: Optional[str] = typer.Option(None, "--only",
                                             help="single-rollout: comma-separated subset of gae,mc1,mc16,iql,"
                                                  "nn_mc16,iql_v_gae"),
    json_out: Optional[Path] = typer.Option(None, "--json-out",
                                            help="where to write the JSON (default runs/analysis/ranking-<time>.json)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
    quick: bool = typer.Option(False, "--quick", help="small sizes: a quick look in about a minute"),
) -> None:
    """How well each advantage estimator ranks a state's candidate actions (vs MC ground truth)."""
    # loaded here, not at the top: the view reads ESTIMATORS, which loads the ranking code and torch
    # (~9.8 s of a `playground` start here, python -X importtime); `playground --help` needs none of it
    from .ranking_view import print_ranking, print_seed_ranking, single_rollout_summary

    if protocol not in PROTOCOLS:
        _fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    t0 = time.perf_counter()

    def progress(info: dict) -> None:
        if not as_json:
            err.print(f"[dim][{info.get('elapsed_s', time.perf_counter() - t0):6.1f}s] {info.get('message', '')}[/dim]")

    try:
        if protocol == "seed":
            result = _run_seed(env, policy, states, actions, rollouts, td_n, m_scaling, network_sizes, gamma, seed,
                               iql_steps, quick, json_out, progress)
        else:
            result = _run_single(env, policy, critic, states, actions, gt_rollouts, gamma, seed, iql_steps,
                                 estimators, quick, json_out, progress)
    except UserError as e:
        _fail("; ".join(e.lines()))
    except ImportError as e:
        _fail(f"environment {env!r} cannot be built here ({e})")
    except OSError as e:
        _fail(f"cannot write the analysis JSON: {e}")
    if as_json:
        summary = result if protocol == "seed" else single_rollout_summary(result)
        typer.echo(json.dumps(summary, allow_nan=False))
    elif protocol == "seed":
        print_seed_ranking(result, out)
    else:
        print_ranking(result, out)
    sys.stdout.flush()


def _run_seed(env, policy, states, actions, rollouts, td_n, m_scaling, network_sizes, gamma, seed, iql_steps,
              quick, json_out, progress) -> dict:
    from engine.launcher import SeedProtocol, run_seed_ranking  # torch: see ranking()

    pick = 1 if quick else 0
    size = {k: v[pick] for k, v in _SEED_SIZES.items()}
    for key, given in (("states", states), ("K", actions), ("M", rollouts), ("iql_max_steps", iql_steps)):
        if given is not None:
            size[key] = given
    p = SeedProtocol(env_id=env, policy=policy or "optimal", td_n=_int_list(td_n, "--td-n"), gamma=gamma, seed=seed,
                     m_scaling=m_scaling, network_sizes=network_sizes, **size)
    return run_seed_ranking(p, progress=progress, json_out=json_out)


def _run_single(env, policy, critic, states, actions, gt_rollouts, gamma, seed, iql_steps, estimators, quick,
                json_out, progress) -> dict:
    from engine.launcher import RankingProtocol, run_ranking  # torch: see ranking()

    pick = 1 if quick else 0
    size = lambda key, given: _SIZES[key][pick] if given is None else given  # noqa: E731
    only = [e.strip() for e in estimators.split(",") if e.strip()] if estimators else None
    p = RankingProtocol(
        env, policy=policy or "start", critic=critic, num_states=size("states", states),
        num_actions=size("actions", actions), gt_rollouts=size("gt_rollouts", gt_rollouts), gamma=gamma,
        seed=seed, iql_steps=size("iql_steps", iql_steps), critic_episodes=_SIZES["critic_episodes"][pick],
        regress_pairs=_SIZES["regress_pairs"][pick], estimators=only)
    return run_ranking(p, progress=progress, json_out=json_out)


__all__ = ["analyze_app"]
