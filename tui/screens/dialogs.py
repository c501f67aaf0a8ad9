"""Modal screens: a yes/no confirmation, the quit question (stop the live runs or leave them
running), the help page, a finished run's summary, and the comparison of marked runs (overlay
plot and table, exportable as PNG / SVG)."""
from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Markdown, Static

from .. import core
from ..model import RunView, num, pct, short_label
from ..widgets.sr_plot import SRPlot

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 70; max-width: 95%; height: auto; max-height: 90%; border: thick $primary;
                    background: $surface; padding: 1 2; }}
{name} .buttons {{ height: auto; margin-top: 1; }}
{name} .buttons Button {{ margin-right: 2; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """A question with two answers (y / n, escape = no)."""
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(escape(self.question))
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no").focus()

    def action_answer(self, ok: bool) -> None:
        self.dismiss(ok)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QuitScreen(ModalScreen[str | None]):
    """Quitting with live runs: stop them, leave them running, or stay."""
    DEFAULT_CSS = DIALOG_CSS.format(name="QuitScreen")
    BINDINGS = [Binding("s", "answer('stop')", "Stop runs"), Binding("l", "answer('leave')", "Leave running"),
                Binding("escape,c", "answer(None)", "Cancel")]

    def __init__(self, live: list[str]):
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        shown = ", ".join(self.live[:4]) + (f" and {len(self.live) - 4} more" if len(self.live) > 4 else "")
        with Vertical():
            yield Static(f"{len(self.live)} run(s) still running: {escape(shown)}.\n"
                         "Runs outlive this window: leave them running and `playground` shows them again "
                         "next time, or stop them now (they save and end `stopped`).")
            with Horizontal(classes="buttons"):
                yield Button("Stop them (s)", id="stop", variant="error")
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#leave").focus()

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


HELP = """\
# Offline RL Playground

**Anywhere**: `F2` launch screen · `F3` monitor · `F1` or `?` this help · `ctrl+p` command palette
(launch a preset, stop a run, compare marked runs, export a figure) · `ctrl+q` quit (live runs
keep running if you say so).

**Launch screen**: pick a preset, change the method, checkpoints and parameters in place; the
validator re-checks every change. Each finding has a button that applies its fix; `ctrl+f`
applies the first. `ctrl+r` launches (error-level findings ask first); `ctrl+t` pretrains a
checkpoint role the ladder lacks.

**Monitor**: `↑`/`↓` or a click select a run (its SR curve and `engine.log`), `m` mark / unmark
it for the overlay, `s` stop it, `o` a finished run's summary, `c` compare the marked runs,
`e` / `v` export the overlay as PNG / SVG, `g` groups the overlay by configuration (one curve
per config: the IQM over seeds with its 95% CI band's edges dotted; `g` again: one line per run).

Runs belong to the runs directory, not to this window: runs started by the CLI or a sweep
show up here too, and a run whose worker died shows `failed` with the reason.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen")
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss_help", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Markdown(HELP)
            with Horizontal(classes="buttons"):
                yield Button("Close (esc)", id="close")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class SummaryScreen(ModalScreen[None]):
    """A finished run: status (and why it failed), config, iterations, SR, findings at launch."""
    DEFAULT_CSS = DIALOG_CSS.format(name="SummaryScreen")
    BINDINGS = [Binding("escape,q,o", "close", "Close")]

    def __init__(self, view: RunView):
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        v = self.view
        s = core.summarize_run(v.path, reconcile_dead=False, rows=v.rows)
        findings = core.read_findings(v.path)
        lines = [f"[b]{escape(s.id)}[/]  [b]{s.status}[/]" + (f" (exit code {s.exit_code})" if s.exit_code is not None else ""),
                 f"{escape(s.preset or '-')}: {s.regime} {s.estimator} + {s.update}, env {s.env}, seed {s.seed}",
                 f"iterations {num(s.iteration)}" + (f" of {s.planned_iterations}" if s.planned_iterations else "")
                 + f" · env steps {num(s.env_steps)}",
                 f"final SR {pct(s.last_sr)} · peak SR {pct(s.peak_sr)}"
                 + (f" at {num(s.peak_env_steps)} env steps" if s.peak_env_steps is not None else ""),
                 f"started {s.started or '-'} · ended {s.ended or '-'}",
                 f"directory {escape(s.path)}"]
        if s.error:
            lines.append(f"[red]{escape(s.error)}[/]")
        if findings:
            lines.append("findings at launch: " + ", ".join(f"{f.get('id')} ({f.get('severity')})" for f in findings))
        with Vertical():
            with VerticalScroll():
                yield Static("\n".join(lines))
            with Horizontal(classes="buttons"):
                yield Button("Close (esc)", id="close")

    def action_close(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class CompareScreen(ModalScreen[None]):
    """The marked runs side by side: their SR curves in one plot, and a table of peaks."""
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > Vertical { width: 95%; height: 95%; border: thick $primary; background: $surface; }
    CompareScreen DataTable { height: auto; max-height: 8; }
    """
    BINDINGS = [Binding("escape,q,c", "close", "Close"), Binding("e", "export('png')", "Export PNG"),
                Binding("v", "export('svg')", "Export SVG")]

    def __init__(self, views: list[RunView]):
        super().__init__()
        self.views = views

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SRPlot(id="compare-plot")
            yield DataTable(id="compare-table", cursor_type="none")

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("run", "status", "iter", "env steps", "final SR", "peak SR")
        for v in self.views:
            t.add_row(v.run_id, v.state, num(v.iteration), num(v.env_steps), pct(v.sr_now), pct(v.peak_sr))
        self.query_one(SRPlot).show([(short_label(v.run_id), *v.series()) for v in self.views])

    def action_close(self) -> None:
        self.dismiss(None)

    def action_export(self, fmt: str) -> None:
        self.app.export_figure(self.views, fmt)


__all__ = ["ConfirmScreen", "QuitScreen", "HelpScreen", "SummaryScreen", "CompareScreen"]
