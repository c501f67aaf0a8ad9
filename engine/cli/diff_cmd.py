"""`playground diff RUN_A RUN_B [--json]`: the config keys in which two runs differ, side by side
(the launcher's `diff_runs`; the TUI's monitor shows the same with `x`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from engine.launcher import diff_runs, resolve_run

from .common import console, print_json, runs_dir_of
from .errors import cli_errors
from .run_cmd import RUNS_DIR_OPT


def shown(value: Any) -> str:
    """A config value as it reads in config.toml; a key the run does not have: (absent)."""
    if value is None:
        return "(absent)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@cli_errors
def diff(ctx: typer.Context, run_a: str = typer.Argument(..., help="run id, a unique prefix of one, or a path"),
         run_b: str = typer.Argument(..., help="the run to compare it with"),
         runs_dir: Optional[Path] = RUNS_DIR_OPT,
         json_output: bool = typer.Option(False, "--json", help="{a, b, same, differ: [{key, a, b}]} on stdout")) -> None:
    """The config keys in which two runs differ (their resolved config.toml), side by side."""
    root = runs_dir_of(ctx, runs_dir)
    d = diff_runs(resolve_run(run_a, root), resolve_run(run_b, root))
    if json_output:
        print_json(d.to_dict())
        return
    if not d.rows:
        typer.echo(f"{d.a} and {d.b} have the same config ({d.same} keys)")
        return
    t = Table(title=f"{len(d.rows)} key{'s' if len(d.rows) != 1 else ''} differ ({d.same} the same)",
              title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    t.add_column("key", no_wrap=True)
    t.add_column(d.a, overflow="fold")
    t.add_column(d.b, overflow="fold")
    for key, va, vb in d.rows:
        t.add_row(key, shown(va), shown(vb))
    console().print(t)
