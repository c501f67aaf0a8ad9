"""The monitor screen: every run in the runs directory in a table (id, preset, status, the run
doctor's badge, iteration, env steps, SR now, peak SR, ETA), filtered by what is typed after `/`
and sorted by the key `t` cycles (`T` flips it; `tui.runs_query`), the selected run's curve (SR,
or any logged metric chosen by key) with the marked runs overlaid (legend), the run doctor's
findings of the selected run, its `engine.log` (one line per iteration), and keys to stop, mark,
summarise, diagnose, choose the curve, view its config (`i`), diff two runs' configs (`x`),
show the table alone (`z`), compare and export. It redraws what changed twice a second from the app's run views (filled by the
follower's messages), so it reads no files itself."""
from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static

from .. import core

from ..model import RunView, short_label
from ..widgets.log_tail import LogTail
from ..widgets.runs_table import RunsHeader, RunsTable
from ..widgets.sr_plot import SRPlot, grouped
from .config_view import ConfigScreen, DiffScreen
from .dialogs import CompareScreen, DoctorScreen, MetricScreen, SummaryScreen

REDRAW_S = 1.0   # the table, curve and log are redrawn once a second (when something changed)
PERCENT_METRICS = ("sr", "sr_at_end", "peak_sr")  # fractions drawn in % on a 0..100 axis
# The footer of an 80-column terminal holds s m / t d and F1/F2/F3, ctrl+q; from this width on it also
# shows o, k, i and x (every key works at any width; F1 lists them all). A key has two bindings: the
# footer's `wide(...)` one, hidden when narrower (check_action), and a hidden one that always works.
WIDE_FOOTER = 112
FILTER_HELP = "status:running preset:mc seed:0-3 sr>0.5 gamma:0.9 -failed"


class MonitorScreen(Screen):
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("m", "mark", "Mark"),
        Binding("o", "wide('summary')", "Summary"),
        Binding("o", "summary", "Summary", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("t", "sort", "Sort"),
        Binding("T", "flip_sort", "Reverse sort", show=False),
        Binding("k", "wide('pick_metric')", "Curve"),
        Binding("k", "pick_metric", "Curve", show=False),
        Binding("d", "doctor", "Doctor"),
        Binding("i", "wide('config')", "Config"),
        Binding("i", "config", "Config", show=False),
        Binding("x", "wide('diff')", "Diff"),
        Binding("x", "diff", "Diff", show=False),
        Binding("z", "zoom_table", "All rows", show=False),   # the table takes the plot's and log's room
        Binding("c", "compare", "Compare", show=False),      # c / e / v: in the help page (F1), so
        Binding("e", "export('png')", "PNG", show=False),    # that F1/F2/F3 and ctrl+q fit the footer
        Binding("v", "export('svg')", "SVG", show=False),    # of an 80x24 terminal
        Binding("g", "group", "Group", show=False),   # the overlay by configuration (IQM over seeds, CI band)
    ]
    DEFAULT_CSS = """
    #monitor-body { height: 1fr; }
    #runs-filter-bar { height: 1; padding: 0 1; }
    #runs-filter-bar Label { width: auto; color: $text-muted; }
    #runs-filter { width: 1fr; max-width: 60; padding: 0 1; }
    #runs-count { width: auto; color: $text-muted; padding-left: 1; }
    #run-detail { height: auto; max-height: 5; color: $text-muted; padding: 0 1; }
    #monitor-lower { height: 1fr; min-height: 8; }
    #plot-box { width: 3fr; border: round $primary; border-title-color: $text; }
    #log { width: 2fr; border: round $secondary; border-title-color: $text; }
    #empty { padding: 1 2; color: $text-muted; }
    MonitorScreen.-table-only #monitor-lower { display: none; }
    MonitorScreen.-table-only RunsTable { max-height: 100%; height: 1fr; }
    """

    def __init__(self):
        super().__init__(id="monitor")
        self.selected: str | None = None
        self.metric = "sr"
        self._redrawn_for: tuple = ()
        self._detail = ""
        self._count_text = ""
        self._log_pending: list[str] = []
        self._log_reset = False
        self.grouped = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="monitor-body"):
            with Horizontal(id="runs-filter-bar"):
                yield Label("/ filter")
                yield Input(placeholder=FILTER_HELP, compact=True, id="runs-filter")
                yield Static("", id="runs-count")
            yield RunsHeader(id="runs-header")
            yield RunsTable(id="runs")
            yield Static("", id="run-detail")
            with Horizontal(id="monitor-lower"):
                with Vertical(id="plot-box"):
                    yield SRPlot(id="plot")
                yield LogTail(id="log")
        yield Footer(compact=True, show_command_palette=False)  # F1/F2/F3 and ctrl+q fit 80 columns (ctrl+p: help)

    def on_mount(self) -> None:
        self.app.monitor_screen = self
        self.query_one("#plot-box").border_title = self._curve_title()
        self.query_one("#log").border_title = "engine.log"
        self.app.dirty.update(self.app.runs)
        self.redraw()
        self._draw_count()
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
        if dirty:
            table.rearrange()  # (the sort's values may have changed)
            self._draw_count()
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
        key = (self.metric, *((v.run_id, len(v.rows)) for v in views))
        if not force and key == self._redrawn_for:
            return
        self._redrawn_for = key
        plot = self.query_one(SRPlot)
        if self.grouped:  # by configuration: SR's IQM over seeds with its CI band
            plot.show(grouped(views))
        else:
            plot.show([(short_label(v.run_id), *v.series(self.metric)) for v in views],
                      percent=self.metric in PERCENT_METRICS)
        n_marked = sum(v.marked for v in self.app.runs.values())
        title = ("SR vs env steps" if self.grouped else self._curve_title()) + (
            f" · {n_marked} marked" if n_marked else "") + (" · by configuration (g)" if self.grouped else "")
        box = self.query_one("#plot-box")
        if box.border_title != title:  # a no-op assignment would still repaint
            box.border_title = title

    def _draw_count(self) -> None:
        """`shown of all runs · sorted by ...`, and the filter words that could not be read."""
        t = self.table
        f = t.filter
        text = (f"{t.row_count} of {t.total}" if f.active else f"{t.total} run{'s' if t.total != 1 else ''}")
        text += f" · t sort: {t.sort.label} {'▼' if t.descending else '▲'}"
        if f.problems:
            text = f"[red]? {escape(f.problems[0])}[/] · " + text
        if text != self._count_text:  # unchanged: no relayout (this runs on every redraw with news)
            self._count_text = text
            self.query_one("#runs-count", Static).update(text)
            self.query_one(RunsHeader).show_sort(t.sort.key, t.descending)

    def _curve_title(self) -> str:
        return ("SR" if self.metric == "sr" else self.metric) + " vs env steps"

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
        found = v.diagnoses()
        colour = {"error": "red", "warning": "yellow"}
        for d in found[:3]:
            fix = " ".join(f"--{k} {x}" for k, x in d.fix.items())
            text += (f"\n[{colour.get(d.severity, 'cyan')}]{d.id} {d.severity}[/]: {escape(d.title)}"
                     + (f" · fix [b]{escape(fix)}[/]" if fix else ""))
        if found:
            text += f"  [dim](d: {len(found)} finding{'s' if len(found) != 1 else ''} with the numbers)[/]"
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

    # --- filter and sort ---------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.table.set_filter(event.value)
            self._draw_count()
            self._select(self.table.selected_id)
            self._draw_detail()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            self.table.focus()

    def on_key(self, event) -> None:
        """In the filter: escape or down goes back to the table (the filter stays)."""
        if event.key in ("escape", "down") and self.focused is self.query_one("#runs-filter"):
            event.stop()
            self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_sort(self) -> None:
        self.table.cycle_sort()
        self._draw_count()

    def action_zoom_table(self) -> None:
        """The runs table alone (every row an 80x24 terminal can hold), or back with the curve and log."""
        self.toggle_class("-table-only")

    def action_flip_sort(self) -> None:
        self.table.flip_sort()
        self._draw_count()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "wide":  # the footer's copy of a key: only where the footer has room for it
            return self.size.width >= WIDE_FOOTER
        return True

    def on_resize(self) -> None:
        self.refresh_bindings()

    def action_wide(self, action: str) -> None:
        getattr(self, f"action_{action}")()

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

    def action_doctor(self) -> None:
        v = self._selected_view()
        if v is not None:
            self.app.push_screen(DoctorScreen(v))

    def action_pick_metric(self) -> None:
        v = self._selected_view()
        keys = v.metrics() if v is not None else []
        if v is None:
            return

        def chosen(key: str | None) -> None:
            if key and key != self.metric:
                self.metric = key
                self._draw_curves(force=True)

        self.app.push_screen(MetricScreen(keys or ["sr"], self.metric), chosen)

    def action_config(self) -> None:
        """The selected run's resolved config.toml."""
        v = self._selected_view()
        if v is None:
            return
        try:
            text = core.config_text(v.path)
        except core.USER_ERRORS as e:
            self.notify("; ".join(core.problem_lines(e)), severity="error", timeout=8)
            return
        self.app.push_screen(ConfigScreen(v, text))

    def action_diff(self) -> None:
        """The config keys in which two runs differ: the two marked runs, or the selected run and
        the one marked run."""
        runs = self.app.runs
        marked = [v for v in runs.values() if v.marked]
        pair = marked if len(marked) == 2 else (
            [runs[self.selected], marked[0]] if len(marked) == 1 and self.selected in runs
            and marked[0].run_id != self.selected else None)
        if pair is None:
            self.notify("diff: mark one run with m and select another, or mark exactly two", severity="warning")
            return
        try:
            diff = core.diff_runs(pair[0].path, pair[1].path)
        except core.USER_ERRORS as e:
            self.notify("; ".join(core.problem_lines(e)), severity="error", timeout=8)
            return
        self.app.push_screen(DiffScreen(diff))

    def action_compare(self) -> None:
        self.app.action_compare()

    def action_export(self, fmt: str) -> None:
        self.app.export_figure(self.plotted(), fmt)


__all__ = ["MonitorScreen", "CompareScreen"]
