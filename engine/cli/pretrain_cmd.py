"""`playground pretrain` (build an environment's checkpoint ladder, with a progress display)
and `playground checkpoints` (what an environment's ladder holds)."""
from __future__ import annotations

import time
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .common import console, pct, print_json
from .errors import EXIT_INTERRUPTED, CliError, cli_errors


class PretrainDisplay:
    """Progress of `run_pretrain`: PPO iterations (of the planned number, wall-limited), the
    measured deterministic / stochastic SR, then each ladder role as it is chosen."""

    def __init__(self, env_id: str):
        self.env_id = env_id
        self.last: dict = {}
        self.roles: list[dict] = []
        self.t0 = time.monotonic()
        self._last_line = 0.0

    def update(self, info: dict) -> None:
        if info.get("phase") == "ladder":
            self.roles.append(info)
        else:
            self.last = info

    def line(self) -> str:
        i = self.last
        if not i:
            return f"pretraining {self.env_id}: starting ({time.monotonic() - self.t0:.0f}s)"
        return (f"pretraining {self.env_id}: PPO iteration {i.get('iteration')}/{i.get('iterations', '?')}  "
                f"env steps {i.get('env_steps', 0):,}  det SR {pct(i.get('det_sr'))}  stoch SR {pct(i.get('stoch_sr'))}  "
                f"log-std {i.get('logstd', float('nan')):.2f}  wall {i.get('wall_s', 0):.0f}s")

    def role_line(self, r: dict) -> str:
        extra = (f"det SR {pct(r.get('det_sr'))}, stoch SR {pct(r.get('stoch_sr'))}" if "det_sr" in r
                 else f"critic fitted on {r.get('fitted_on')}, R^2 {r.get('fit_r2', float('nan')):.3f}")
        return f"  ladder: {r.get('role')} = iteration {r.get('iteration')} ({extra})"

    def render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar

        i = self.last
        parts = [Text(self.line())]
        if i.get("iterations"):
            parts.insert(0, ProgressBar(total=float(i["iterations"]), completed=float(i.get("iteration", 0)), width=50))
        parts += [Text(self.role_line(r), style="green") for r in self.roles]
        return Group(*parts)


def pretrain_with_progress(env_id: str, *, seed: int = 0, json_mode: bool = False) -> dict:
    """run_pretrain with a live display (stderr when stdout carries JSON); returns the index."""
    from engine.envs import check_env_id

    check_env_id(env_id)
    from engine.train.pretrain import run_pretrain

    disp = PretrainDisplay(env_id)
    con = console(stderr=json_mode)
    try:
        if con.is_terminal:
            with Live(get_renderable=disp.render, console=con, refresh_per_second=4):
                index = run_pretrain(env_id, seed=seed, progress=disp.update)
        else:
            def plain(info: dict) -> None:
                disp.update(info)
                if info.get("phase") == "ladder":
                    typer.echo(disp.role_line(info), err=json_mode)
                elif time.monotonic() - disp._last_line >= 5.0:
                    disp._last_line = time.monotonic()
                    typer.echo(disp.line(), err=json_mode)

            typer.echo(f"pretraining {env_id} (seed {seed}) ...", err=json_mode)
            index = run_pretrain(env_id, seed=seed, progress=plain)
    except KeyboardInterrupt:
        typer.echo(f"pretraining {env_id} interrupted: the ladder index was not written; "
                   f"run `playground pretrain --env {env_id}` again", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return index


def ladder_rows(index: dict) -> list[dict]:
    from engine.checkpoints import ROLE_SEED_NAME, ROLES, ladder_dir

    rows = []
    roles = index.get("roles") or {}
    for role in list(ROLES) + [r for r in roles if r not in ROLES]:
        e = roles.get(role)
        if e is None:
            continue
        aliases = [a for a in (e.get("seed_alias") or ROLE_SEED_NAME.get(role), e.get("seed_name")) if a]
        rows.append({"role": role, "aliases": list(dict.fromkeys(aliases)),
                     "file": e.get("path") or (str(ladder_dir(index.get("env_id", "")) / e["file"]) if e.get("file") else None),
                     "source": e.get("source"),
                     "iteration": e.get("iteration"), "logstd": e.get("logstd"), "det_sr": e.get("det_sr"),
                     "stoch_sr": e.get("stoch_sr"), "gamma": e.get("gamma"), "fitted_on": e.get("fitted_on")})
    return rows


def ladder_table(env_id: str, rows: list[dict]) -> Table:
    t = Table(title=f"checkpoint ladder of {env_id}", title_justify="left")
    for col, just in (("role", "left"), ("aliases", "left"), ("source", "left"), ("file", "left"), ("iteration", "right"),
                      ("log-std", "right"), ("det SR", "right"), ("stoch SR", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        note = f" (critic on {r['fitted_on']}, gamma {r['gamma']:g})" if r.get("fitted_on") and r.get("gamma") else ""
        t.add_row(r["role"], ", ".join(r["aliases"]) or "-", r.get("source") or "-", (r["file"] or "-") + note,
                  str(r["iteration"]) if r["iteration"] is not None else "-",
                  f"{r['logstd']:.2f}" if isinstance(r.get("logstd"), (int, float)) else "-",
                  pct(r.get("det_sr")), pct(r.get("stoch_sr")))
    return t


@cli_errors
def pretrain(env: str = typer.Option("pickcube-lite", "--env", help="environment id: pickcube-lite or maniskill:<TaskId>"),
             seed: int = typer.Option(0, "--seed", min=0, help="pretraining seed"),
             json_output: bool = typer.Option(False, "--json", help="print the ladder as JSON on stdout")) -> None:
    """Build the checkpoint ladder (start / expert / optimal policies and critics) for an environment."""
    index = pretrain_with_progress(env, seed=seed, json_mode=json_output)
    rows = ladder_rows(index)
    if json_output:
        print_json({"env_id": env, "roles": rows})
        return
    console().print(ladder_table(env, rows))
    pre = index.get("pretrain") or {}
    if pre:
        typer.echo(f"{pre.get('iterations_run')} PPO iterations, {pre.get('env_steps', 0):,} env steps, "
                   f"{pre.get('wall_s')}s; finetune from it with e.g. `playground run online-mc16-awr --env {env}`")


@cli_errors
def checkpoints(env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
                json_output: bool = typer.Option(False, "--json", help="JSON on stdout")) -> None:
    """The checkpoints an environment has: role and seed-name aliases, file, iteration, log-std, det and stoch SR."""
    from engine.checkpoints import ladder_dir, read_index
    from engine.envs import check_env_id

    check_env_id(env)
    index = read_index(env)
    rows = ladder_rows(index)
    if json_output:
        print_json({"env_id": env, "dir": index.get("dir") or str(ladder_dir(env)), "roles": rows})
        return
    if not rows:
        typer.echo(f"env {env} has no checkpoints yet ({ladder_dir(env)}): build them with "
                   f"`playground pretrain --env {env}` (`playground run` also does it when needed)")
        return
    console().print(ladder_table(env, rows))
