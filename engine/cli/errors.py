"""User-facing errors of the CLI: one clear line per problem, an exit code, never a traceback.

`cli_errors` wraps every command. It turns every `engine.errors.UserError` (the config,
checkpoint, env, record and sweep errors derive from it, and so does the CLI's own `CliError`)
into `error: ...` lines on stderr and exit code 2 (or a `CliError`'s own code); with `--json`
the same problems also go to stdout as one JSON object. Anything else is a bug: one line saying so
and exit code 70, unless `PLAYGROUND_DEBUG=1`, which lets the traceback through.
"""
from __future__ import annotations

import functools
import json
import traceback
from typing import Any, Callable

import click
import typer

from engine.errors import UserError, one_line
from engine.launcher import SettingError, setting

# typer >= 0.2x vendors click (typer._click): accept both its exception classes and click's
EXIT_EXC = tuple({typer.Exit, click.exceptions.Exit})
ABORT_EXC = tuple({typer.Abort, click.Abort})
USAGE_EXC = tuple(c for c in {getattr(typer, "TyperException", None), click.ClickException} if c is not None)
PASSTHROUGH = EXIT_EXC + ABORT_EXC + USAGE_EXC

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130


class CliError(UserError):
    """Unusable input found by the CLI itself; `code` is the exit code (2 unless said otherwise)."""

    def __init__(self, lines: str | list[str], code: int = EXIT_USAGE):
        super().__init__(lines)
        self.code = code


def debug_enabled() -> bool:
    try:
        return setting("PLAYGROUND_DEBUG")
    except SettingError:
        return False  # check_all() names the bad value; a traceback is not what it asked for


def exit_code_of(exc: UserError) -> int:
    return exc.code if isinstance(exc, CliError) else EXIT_USAGE


def print_error_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"error: {line}", err=True)


def json_error(lines: list[str], **extra: Any) -> None:
    typer.echo(json.dumps({"ok": False, "errors": lines, **extra}, indent=1))


def cli_errors(func: Callable) -> Callable:
    """Decorator for commands: user errors -> lines + exit code; bugs -> one line + exit 70."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PASSTHROUGH + (KeyboardInterrupt,):
            raise
        except UserError as exc:
            if debug_enabled():
                traceback.print_exc()
            lines = exc.lines()
            print_error_lines(lines)
            if kwargs.get("json_output"):
                json_error(lines)
            raise typer.Exit(exit_code_of(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the point of this wrapper
            if debug_enabled():
                raise
            typer.echo(f"internal error: {type(exc).__name__}: {one_line(str(exc))} "
                       "(a bug in playground; rerun with PLAYGROUND_DEBUG=1 for the traceback)", err=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper
