"""Helpers shared by the CLI commands: the runs directory, consoles, JSON output, formatting."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from engine.launcher import setting
from engine.launcher import ensure_runs_dir  # noqa: F401 (re-exported for the commands)

# The command line as typed (set by main(); None when the app is driven from code or tests).
ARGV: list[str] | None = None


def runs_dir_of(ctx: typer.Context, local: Path | None = None) -> Path:
    """`--runs-dir` given to the command, else to `playground`, else $PLAYGROUND_RUNS_DIR, else ./runs."""
    if local is not None:
        return Path(local)
    root = ctx.find_root()
    if isinstance(root.obj, dict) and root.obj.get("runs_dir"):
        return Path(root.obj["runs_dir"])
    return Path(setting("PLAYGROUND_RUNS_DIR"))


def console(stderr: bool = False) -> Console:
    """A rich console on the current stdout/stderr (created per call: tests swap the streams)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False,
                   width=None if (sys.stderr if stderr else sys.stdout).isatty() else 120)


def say(msg: str, *, json_mode: bool = False) -> None:
    """A progress or info line for a human: stdout normally, stderr when stdout carries JSON."""
    typer.echo(msg, err=json_mode)


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=1, default=str))


def pct(x: Any, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def num(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fix_flags(fix: dict[str, Any]) -> str:
    """A finding's fix as command-line flags: {'target_kl': 100.0} -> '--target_kl 100.0'."""
    parts = []
    for k, v in fix.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        parts.append(f"--{k} {shlex.quote(str(v))}")
    return " ".join(parts)


def command_line(fallback: list[str]) -> str:
    """The full command line that launched this run: as typed when known, else reconstructed."""
    args = ARGV if ARGV is not None else fallback
    return shlex.join(["playground", *args])
