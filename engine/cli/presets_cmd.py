"""`playground presets`: the presets in presets/ with their regime, estimator, update,
the seed's peak SR for them, and a one-line description."""
from __future__ import annotations

import typer
from rich.table import Table

from engine.launcher import list_presets, presets_dir

from .common import console, pct, print_json
from .errors import cli_errors


@cli_errors
def presets(json_output: bool = typer.Option(False, "--json", help="a JSON list on stdout")) -> None:
    """List presets: name, regime, estimator, update, expected SR, description."""
    items = list_presets()
    if json_output:
        print_json([{"name": p.name, "path": str(p.path), "description": p.description, "regime": p.regime,
                     "estimator": p.estimator, "update": p.update, "expected_sr": p.expected_sr,
                     "seed_command": p.seed_command} for p in items])
        return
    if not items:
        typer.echo(f"no presets in {presets_dir()}; a preset is a flat TOML table of config keys "
                   "(any .toml path also works as PRESET)")
        return
    t = Table(title=f"presets ({presets_dir()})", title_justify="left")
    for col, just in (("name", "left"), ("regime", "left"), ("estimator", "left"), ("update", "left"),
                      ("seed's SR", "right"), ("description", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for p in items:
        t.add_row(p.name, p.regime, p.estimator, p.update, pct(p.expected_sr), p.description or "-")
    console().print(t)
    typer.echo("run one: `playground run NAME [--key value ...]`; check it first: `playground check NAME`")
