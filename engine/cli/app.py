"""The `playground` typer app: every command of interfaces.md, and `main()` (the console script).

Commands live in small modules: `run_cmd` (check, run), `sweep_cmd`, `runs_cmd` (runs, show,
compare, stop), `diff_cmd` (diff), `pretrain_cmd` (pretrain, checkpoints), `presets_cmd`, `reproduce_cmd`, `budget_cmd`, `doctor_cmd`, `analyze_cmd` (the
`analyze` sub-app). `playground` with no
arguments, or `playground tui`, opens the Textual launcher: `tui.app.run(runs_dir)`.

Global option: `--runs-dir` (also $PLAYGROUND_RUNS_DIR; each command that reads runs accepts it
too). Exit codes: 0 ok, 1 failed (or error-level findings for `check`), 2 unusable input,
3 refused by the validator, 70 internal error (a bug; PLAYGROUND_DEBUG=1 shows the traceback),
130 interrupted.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from engine.errors import UserError
from engine.launcher import check_settings, setting

from . import common
from .analyze_cmd import analyze_app
from .budget_cmd import budget
from .diff_cmd import diff
from .doctor_cmd import doctor
from .errors import ABORT_EXC, EXIT_EXC, USAGE_EXC, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, debug_enabled
from .presets_cmd import presets
from .reproduce_cmd import reproduce
from .pretrain_cmd import checkpoints, pretrain
from .run_cmd import check, run
from .runs_cmd import compare, runs, show, stop
from .sweep_cmd import sweep

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    name="playground",
    help="Offline RL Playground: finetune policies with GAE / MC-k / IQL advantages and PPO / AWR updates.\n\n"
         "Run `playground` alone for the Textual launcher.",
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def open_tui(runs_dir: Path | None) -> None:
    """The Textual launcher: `tui.app.run(runs_dir) -> int` is its one entry point."""
    root = Path(runs_dir) if runs_dir is not None else Path(setting("PLAYGROUND_RUNS_DIR"))
    try:  # loaded here: Textual adds ~2.3 s to a start (python -X importtime), and only the TUI needs it
        from tui.app import run as run_tui
    except ImportError as e:
        if (e.name or "").split(".")[0] in ("tui", "textual", "textual_plot"):
            typer.echo(f"the Textual launcher (TUI) is not installed in this build ({e.name} is missing); see "
                       "`playground --help` for the commands", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        raise
    raise typer.Exit(run_tui(root))


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context,
         runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", envvar="PLAYGROUND_RUNS_DIR",
                                                 help="runs directory (default ./runs)")) -> None:
    ctx.obj = {"runs_dir": runs_dir}
    check_settings()  # every environment variable the project reads: one line per bad one, exit 2
    if ctx.invoked_subcommand is None:
        open_tui(runs_dir)


@app.command("tui")
def tui_cmd(ctx: typer.Context) -> None:
    """Open the Textual launcher."""
    open_tui(ctx.find_root().obj.get("runs_dir") if isinstance(ctx.find_root().obj, dict) else None)


app.command("presets")(presets)
app.command("check", context_settings=OVERRIDES)(check)
app.command("run", context_settings=OVERRIDES)(run)
app.command("sweep", context_settings=OVERRIDES)(sweep)
app.command("runs")(runs)
app.command("show")(show)
app.command("compare")(compare)
app.command("diff")(diff)
app.command("stop")(stop)
app.command("pretrain")(pretrain)
app.command("checkpoints")(checkpoints)
app.command("reproduce")(reproduce)
app.command("budget")(budget)
app.command("doctor")(doctor)
app.add_typer(analyze_app, name="analyze")  # engine/cli/analyze_cmd.py (its own module)


def main(argv: list[str] | None = None) -> int:
    """Console script entry point: runs the app; no tracebacks for user errors (PLAYGROUND_DEBUG=1
    shows them for bugs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    common.ARGV = args
    try:
        rv = app(args=args, prog_name="playground", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0  # click returns an Exit's code in this mode
    except EXIT_EXC as e:
        code = e.exit_code
    except ABORT_EXC:
        typer.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except UserError as e:  # raised outside a command (a command's own are handled by cli_errors)
        for line in e.lines():
            typer.echo(f"error: {line}", err=True)
        code = EXIT_USAGE
    except USAGE_EXC as e:
        if hasattr(e, "show"):
            e.show()
        else:
            typer.echo(f"error: {e}", err=True)
        code = getattr(e, "exit_code", EXIT_USAGE)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = 0
    except Exception as e:  # noqa: BLE001
        if debug_enabled():
            raise
        typer.echo(f"internal error: {type(e).__name__}: {e} (a bug in playground; rerun with "
                   "PLAYGROUND_DEBUG=1 for the traceback)", err=True)
        code = EXIT_INTERNAL
    sys.exit(code)
