"""Modal screens: a yes/no confirmation, the quit question (stop the live runs or leave them
running), the help page, a finished run's summary, the run doctor's findings, the choice of the
monitor's curve (any logged metric, by key), and the comparison of marked runs (overlay plot and
table, exportable as PNG / SVG)."""
from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Markdown, Static

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


class TextDialog(ModalScreen[None]):
    """The body every read-only dialog shares: an optional heading, a scrolling body (`body()`:
    its widgets) and a Close button; escape / q and the dialog's own key (`BINDINGS`) close it."""
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def heading(self) -> str | None:
        return None

    def body(self) -> ComposeResult:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            heading = self.heading()
            if heading is not None:
                yield Static(heading, classes="heading")
            with VerticalScroll():
                yield from self.body()
            with Horizontal(classes="buttons"):
                yield Button("Close (esc)", id="close")

    def action_close(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


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

**Anywhere**: `F2` launch screen (a new run) · `F3` monitor · `F1` or `?` this help · `ctrl+p` command palette
(launch a preset, stop a run, compare marked runs, export a figure) · `ctrl+q` quit (live runs
keep running if you say so).

**Launch screen**: pick a preset, change the method, checkpoints and parameters in place; the
validator re-checks every change. Each checkpoint has a list of the env's ladder roles with their
measured det / stoch SR (picking one fills the field, which still takes a seed name, a path or
`none`). `tab` moves the focus (the focused widget has accent bars or border). Each finding has a button that applies its fix; `ctrl+f`
applies the first. `ctrl+r` launches (error-level findings ask first); `ctrl+t` pretrains a
checkpoint role the ladder lacks.

**Monitor**: `↑`/`↓` or a click select a run (its SR curve and `engine.log`), `m` mark / unmark
it for the overlay, `s` stop it, `o` a finished run's summary, `c` compare the marked runs,
`e` / `v` export the overlay as PNG / SVG, `g` groups the overlay by configuration (one curve
per config: the IQM over seeds with its 95% CI band's edges dotted; `g` again: one line per run),
`k` choose the curve by metric key (`approx_kl`, `v_loss`, `weight_ess_frac`, ...; the overlay
follows), `d` the run doctor's findings (the `dr` column counts them: yellow warnings, red errors),
`i` the run's resolved `config.toml`, `x` the config keys in which two runs differ (mark one run
and select another, or mark two).

**Filter and sort the runs**: `/` types a filter (words that must all match, `-word` negates):
`status:running` (`status:live`), `preset:mc16`, `seed:0-3`, `seed:1,5`, `sr>0.5` or `sr>50%`,
`peak<0.9`, `iter>=10`, any config key (`gamma:0.9`, `update_epochs>=50`) or a bare word (part of
the id, preset or status); `enter` / `esc` go back to the table. `t` cycles the sort (started,
status, preset, seed, SR now, peak SR; the column is marked), `T` reverses it. `z` shows the table
alone (as many rows as the terminal holds; `z` again brings the curve and log back). On a terminal under
112 columns the footer leaves out `o`, `k`, `i` and `x`; they work all the same.

Runs belong to the runs directory, not to this window: runs started by the CLI or a sweep
show up here too, and a run whose worker died shows `failed` with the reason.
"""


class HelpScreen(TextDialog):
    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen")
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def body(self) -> ComposeResult:
        yield Markdown(HELP)


class SummaryScreen(TextDialog):
    """A finished run: status (and why it failed), config, iterations, SR, findings at launch."""
    DEFAULT_CSS = DIALOG_CSS.format(name="SummaryScreen")
    BINDINGS = [Binding("escape,q,o", "close", "Close")]

    def __init__(self, view: RunView):
        super().__init__()
        self.view = view

    def body(self) -> ComposeResult:
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
        ends = [r.get("sr_at_end") for r in v.rows if isinstance(r.get("sr_at_end"), (int, float))]
        if ends:
            lines.append(f"final success_once (SR) {pct(s.last_sr)} · success_at_end {pct(ends[-1])}")
        lines.append("findings at launch: " + (", ".join(f"{f.get('id')} ({f.get('severity')})" for f in findings)
                                               if findings else "none"))
        found = v.diagnoses()
        lines += (["run doctor:"] + diagnosis_lines(found)) if found else ["run doctor: no findings"]
        yield Static("\n".join(lines))


def diagnosis_lines(diagnoses: list) -> list[str]:
    """The doctor's findings as markup lines: id, severity, title; symptom; known issue; fix flags."""
    colour = {"error": "red", "warning": "yellow"}
    out = []
    for d in diagnoses:
        fix = " ".join(f"--{k} {str(v).lower() if isinstance(v, bool) else v}" for k, v in d.fix.items())
        out += [f"[b]{d.id}[/] [{colour.get(d.severity, 'cyan')}]{d.severity}[/]: {escape(d.title)}",
                f"  symptom: {escape(d.symptom)}", f"  known issue: {escape(d.known_issue)}"]
        if fix:
            out.append(f"  fix: [b]{escape(fix)}[/]")
    return out


class DoctorScreen(TextDialog):
    """The run doctor's findings for one run, with the numbers, the known issue and the fix."""
    DEFAULT_CSS = DIALOG_CSS.format(name="DoctorScreen").replace("width: 70;", "width: 100;")
    BINDINGS = [Binding("escape,q,d", "close", "Close")]

    def __init__(self, view: RunView):
        super().__init__()
        self.view = view

    def heading(self) -> str:
        return f"[b]run doctor: {escape(self.view.run_id)}[/]"

    def body(self) -> ComposeResult:
        found = self.view.diagnoses()
        yield Static("\n".join(diagnosis_lines(found)) if found else "the run doctor found nothing in this run's metrics")


class MetricScreen(ModalScreen[str | None]):
    """Choose the monitor's curve by key: the exact key, else the one key that starts with (or
    contains) what was typed; the keys the selected run logged are listed."""
    DEFAULT_CSS = DIALOG_CSS.format(name="MetricScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, keys: list[str], current: str):
        super().__init__()
        self.keys, self.current = keys, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"curve: type a metric key and press Enter (now [b]{escape(self.current)}[/])")
            yield Input(placeholder="e.g. approx_kl", id="metric-key")
            yield Static("logged: " + escape(", ".join(self.keys) or "nothing yet"), id="metric-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def match(self, typed: str) -> str | None:
        typed = typed.strip()
        if typed in self.keys:
            return typed
        for test in (str.startswith, str.__contains__):
            hits = [k for k in self.keys if test(k, typed)]
            if len(hits) == 1:
                return hits[0]
        return None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        key = self.match(event.value)
        if key is None:
            self.notify(f"no single logged metric matches {event.value.strip()!r}", severity="warning")
            return
        self.dismiss(key)

    def action_cancel(self) -> None:
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


__all__ = ["TextDialog", "ConfirmScreen", "QuitScreen", "HelpScreen", "SummaryScreen", "DoctorScreen", "MetricScreen",
           "CompareScreen", "diagnosis_lines"]
