"""The monitor screen: every run in the runs directory in a table (id, preset, status,
iteration, env steps, SR now, peak SR, ETA), the selected run's SR curve with the marked runs
overlaid (legend), the selected run's `engine.log`, and keys to stop, mark, summarise, compare
and export. It redraws what changed twice a second from the app's run views (filled by the
follower's messages), so it reads no files itself."""
from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static

from ..model import RunView, short_label
from ..widgets.log_tail import LogTail
from ..widgets.runs_table import RunsHeader, RunsTable
from ..widgets.sr_plot import SRPlot, grouped
from .dialogs import CompareScreen, SummaryScreen

REDRAW_S = 1.0   # the table, curve and log are redrawn once a second (when something changed)


class MonitorScreen(Screen):
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("m", "mark", "Mark"),
        Binding("o", "summary", "Summary"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export('png')", "PNG"),
        Binding("v", "export('svg')", "SVG"),
        Binding("g", "group", "Group", show=False),   # the overlay by configuration (IQM over seeds, CI band)
    ]
    DEFAULT_CSS = """
    #monitor-body { height: 1fr; }
    #run-detail { height: auto; max-height: 3; color: $text-muted; padding: 0 1; }
    #monitor-lower { height: 1fr; min-height: 8; }
    #plot-box { width: 3fr; border: round $primary; border-title-color: $text; }
    #log { width: 2fr; border: round $secondary; border-title-color: $text; }
    #empty { padding: 1 2; color: $text-muted; }
    """

    def __init__(self):
        super().__init__(id="monitor")
        self.selected: str | None = None
        self._redrawn_for: tuple = ()
        self._detail = ""
        self._log_pending: list[str] = []
        self._log_reset = False
        self.grouped = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="monitor-body"):
            yield RunsHeader(id="runs-header")
            yield RunsTable(id="runs")
            yield Static("", id="run-detail")
            with Horizontal(id="monitor-lower"):
                with Vertical(id="plot-box"):
                    yield SRPlot(id="plot")
                yield LogTail(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.app.monitor_screen = self
        self.query_one("#plot-box").border_title = "SR vs env steps"
        self.query_one("#log").border_title = "engine.log"
        self.app.dirty.update(self.app.runs)
        self.redraw()
        self.set_interval(REDRAW_S, self.redraw)
        self.query_one(RunsTable).focus()

    def on_screen_resume(self) -> None:
        self.redraw()

    # --- drawing -------------------------------------------------------------------------
    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def redraw(self) -> None:
        """Update the rows that changed, then the curve and detail line of the selected run."""
        app = self.app
        dirty, app.dirty = app.dirty, set()
        table = self.table
        for run_id in sorted(dirty):
            v = app.runs.get(run_id)
            if v is None:
                table.remove(run_id)
            else:
                table.upsert(v)
        if self.selected is None and table.row_count:
            table.select_last()  # the newest run
        self._select(table.selected_id)
        self._draw_curves(force=bool(dirty))
        self._draw_detail()
        self._flush_log()

    def _select(self, run_id: str | None) -> None:
        if run_id != self.selected:
            self.selected = run_id
            self.app.follower.tail(run_id)
            self._log_reset, self._log_pending = True, []
            self._draw_curves(force=True)
            self._draw_detail()

    def plotted(self) -> list[RunView]:
        """The selected run first, then the marked ones."""
        runs = self.app.runs
        out = [runs[self.selected]] if self.selected in runs else []
        out += [v for v in runs.values() if v.marked and v.run_id != self.selected]
        return out

    def _draw_curves(self, force: bool = False) -> None:
        views = self.plotted()
        key = tuple((v.run_id, len(v.rows)) for v in views)
        if not force and key == self._redrawn_for:
            return
        self._redrawn_for = key
        self.query_one(SRPlot).show(grouped(views) if self.grouped else
                                    [(short_label(v.run_id), *v.series()) for v in views])
        n_marked = sum(v.marked for v in self.app.runs.values())
        title = "SR vs env steps" + (f" · {n_marked} marked" if n_marked else "") + (
            " · by configuration (g)" if self.grouped else "")
        box = self.query_one("#plot-box")
        if box.border_title != title:  # a no-op assignment would still repaint
            box.border_title = title

    def _draw_detail(self) -> None:
        v = self.app.runs.get(self.selected) if self.selected else None
        if v is None:
            self._set_detail(f"no runs in {escape(str(self.app.runs_dir))} yet: F2 launches one"
                             if not self.app.runs else "")
            return
        c = v.config
        text = (f"{escape(v.run_id)}: {c.get('regime', '?')} {c.get('estimator', '?')} + {c.get('update', '?')} · "
                f"env {c.get('env', '?')} · seed {c.get('seed', '?')}")
        if v.state == "failed" and v.status.get("error"):
            first = str(v.status["error"]).splitlines()[0]
            text += f"\n[red]failed: {escape(first)}[/]"
        self._set_detail(text)

    def _set_detail(self, text: str) -> None:
        if text != self._detail:  # unchanged text: no relayout
            self._detail = text
            self.query_one("#run-detail", Static).update(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._select(event.option.id)

    def on_log_lines(self, lines: list[str], reset: bool) -> None:
        """Log lines of the selected run: kept until the next redraw (one relayout a second)."""
        if reset:
            self._log_reset, self._log_pending = True, []
        self._log_pending.extend(lines)

    def _flush_log(self) -> None:
        logs = self.query(LogTail)
        if not logs:
            return  # the screen is being taken down
        log = logs.first()
        if self._log_reset:
            log.clear()
            self._log_reset = False
        if self._log_pending:
            log.write_lines(self._log_pending)
            self._log_pending = []

    # --- actions -------------------------------------------------------------------------
    def _selected_view(self) -> RunView | None:
        v = self.app.runs.get(self.selected) if self.selected else None
        if v is None:
            self.notify("no run selected", severity="warning")
        return v

    def action_stop(self) -> None:
        v = self._selected_view()
        if v is not None:
            self.app.stop_runs([v.run_id])

    def action_mark(self) -> None:
        v = self._selected_view()
        if v is None:
            return
        v.marked = not v.marked
        self.app.dirty.add(v.run_id)
        self.redraw()

    def action_summary(self) -> None:
        v = self._selected_view()
        if v is None:
            return
        if v.live:
            self.notify(f"{v.run_id} is {v.state}: its summary opens once it has ended", severity="warning")
            return
        self.app.push_screen(SummaryScreen(v))

    def action_group(self) -> None:
        """Toggle the overlay between one line per run and one per configuration (IQM over seeds, CI band)."""
        self.grouped = not self.grouped
        self._draw_curves(force=True)

    def action_compare(self) -> None:
        self.app.action_compare()

    def action_export(self, fmt: str) -> None:
        self.app.export_figure(self.plotted(), fmt)


__all__ = ["MonitorScreen", "CompareScreen"]
