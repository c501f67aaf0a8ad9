"""Printing the validator's findings: id, severity and title; why; the fix as `--key value` flags."""
from __future__ import annotations

import typer

from .common import fix_flags


def counts(findings: list) -> str:
    e = sum(f.severity == "error" for f in findings)
    w = len(findings) - e
    return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"


def print_findings(findings: list, *, err: bool = False) -> None:
    for f in findings:
        sev = typer.style(f.severity, fg="red" if f.severity == "error" else "yellow", bold=True)
        typer.echo(f"{typer.style(f.id, bold=True)} {sev}: {f.title}", err=err)
        typer.echo(f"    why: {f.why}", err=err)
        if f.fix:
            typer.echo(f"    fix: {fix_flags(f.fix)}", err=err)
