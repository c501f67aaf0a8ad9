"""User-facing errors of the CLI: one clear line per problem, an exit code, never a traceback.

`cli_errors` wraps every command. It turns the engine's user-input errors (`ConfigError` with
all its problems, `CheckpointError`, `EnvError`, `RecordError`) and the CLI's own `CliError`
into `error: ...` lines on stderr and exit code 2 (or the error's own code); with `--json` the
same problems also go to stdout as one JSON object. Anything else is a bug: one line saying so
and exit code 70, unless `PLAYGROUND_DEBUG=1`, which lets the traceback through.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable

import click
import typer

# typer >= 0.2x vendors click (typer._click): accept both its exception classes and click's
EXIT_EXC = tuple({typer.Exit, click.exceptions.Exit})
ABORT_EXC = tuple({typer.Abort, click.Abort})
USAGE_EXC = tuple(c for c in {getattr(typer, "TyperException", None), click.ClickException} if c is not None)
PASSTHROUGH = EXIT_EXC + ABORT_EXC + USAGE_EXC

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130


class CliError(Exception):
    """Unusable input found by the CLI itself; `lines` are printed one per line."""

    def __init__(self, lines: str | list[str], code: int = EXIT_USAGE):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.code = code
        super().__init__("\n".join(self.lines))


def debug_enabled() -> bool:
    return os.environ.get("PLAYGROUND_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


USER_ERRORS = ("ConfigError", "CheckpointError", "EnvError", "RecordError", "SweepError")


def _user_error_lines(exc: BaseException) -> list[str] | None:
    """The one-line messages of a user-input error, or None when `exc` is not one.

    Matched by class name within the `engine` package (so the torch-importing modules that
    define some of them need not be imported here, and a class moving between modules does
    not turn a user error into an "internal error")."""
    if isinstance(exc, CliError):
        return exc.lines
    for cls in type(exc).__mro__:
        if cls.__name__ in USER_ERRORS and cls.__module__.startswith("engine."):
            problems = getattr(exc, "problems", None)
            if problems:
                return [_one_line(str(p)) for p in problems]
            return [_one_line(str(exc))]
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


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
        except Exception as exc:  # noqa: BLE001 - the point of this wrapper
            lines = _user_error_lines(exc)
            if lines is None:
                if debug_enabled():
                    raise
                typer.echo(f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                           "(a bug in playground; rerun with PLAYGROUND_DEBUG=1 for the traceback)", err=True)
                raise typer.Exit(EXIT_INTERNAL) from None
            if debug_enabled():
                import traceback

                traceback.print_exc()
            print_error_lines(lines)
            if kwargs.get("json_output"):
                json_error(lines)
            raise typer.Exit(getattr(exc, "code", EXIT_USAGE) if isinstance(exc, CliError) else EXIT_USAGE) from None

    return wrapper
