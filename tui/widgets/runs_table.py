"""`RunsTable`: one line per run (mark, id, status, the run doctor's badge, seed, iteration, env
steps, SR now, peak SR, ETA, preset) under a `RunsHeader` (which marks the sorted column), in the
order and subset the monitor's filter and sort give (`tui.runs_query`). It is an `OptionList` of fixed-width lines, so that a changed run
re-renders one line: a DataTable re-renders every cell on any update, which cost ~8% of a core
while following 8 live runs (see `python -m tui.bench`)."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..model import RunView, duration, num, pct, short_label
from ..runs_query import SORTS, RunFilter, Sort, arrange

# (key, header, width); the preset takes what is left
# (widths chosen so that an 80-column terminal still shows the first letters of the preset)
COLUMNS = (("mark", "", 1), ("id", "id", 15), ("status", "status", 7), ("doctor", "dr", 2), ("seed", "seed", 4),
           ("iter", "iter", 7), ("steps", "env steps", 9), ("sr", "SR now", 6), ("peak", "peak SR", 7),
           ("eta", "ETA", 5), ("preset", "preset", 0))
BADGE_STYLE = {"error": "bold white on red", "warning": "bold black on yellow", "info": "cyan"}
STATUS_STYLE = {"done": "green", "failed": "bold red", "stopped": "yellow", "running": "cyan", "queued": "dim",
                "stalled": "bold magenta"}


def badge(v: RunView) -> tuple[str, str]:
    """The doctor's badge: how many findings ('!' past 9) in the colour of the worst; blank when none."""
    found = v.diagnoses()
    if not found:
        return "", ""
    return (str(len(found)) if len(found) < 10 else "!"), BADGE_STYLE.get(found[0].severity, "")


def cells(v: RunView) -> dict[str, str]:
    it = "-" if v.iteration is None else f"{v.iteration}" + (f"/{v.planned}" if v.planned else "")
    text, style = badge(v)
    return {"mark": "●" if v.marked else " ", "id": short_label(v.run_id, 15), "status": v.state,
            "doctor": text, "doctor_style": style, "seed": str(v.config.get("seed", "-")), "iter": it,
            "steps": num(v.env_steps), "sr": pct(v.sr_now), "peak": pct(v.peak_sr), "eta": duration(v.eta_s()),
            "preset": v.preset or "-"}


def line(values: dict[str, str], *, header: bool = False) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, (key, _, width) in enumerate(COLUMNS):
        value = values[key]
        cell = value if not width else (value[:width - 1] + "…" if len(value) > width else value).ljust(width)
        style = "bold" if header else (STATUS_STYLE.get(value, "") if key == "status" else
                                       "bold yellow" if key == "mark" else
                                       values.get("doctor_style", "") if key == "doctor" and value.strip() else "")
        if key == "doctor" and not header and value:
            cell = f"{value:>{width}}"
        t.append(cell, style=style)
        if i < len(COLUMNS) - 1:
            t.append(" ")
    return t


class RunsHeader(Static):
    """The column names; the sorted column carries ▲ (ascending) or ▼ (descending)."""
    DEFAULT_CSS = """
    RunsHeader { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw):
        super().__init__(self.text_for(), **kw)

    @staticmethod
    def text_for(sort_key: str = "id", descending: bool = False) -> Text:
        arrow = "▼" if descending else "▲"
        names = {}
        for key, name, width in COLUMNS:
            names[key] = name
            if key == sort_key and key != "id":  # (the id order is the start order: no arrow needed)
                names[key] = (name[:width - 1] if width and len(name) >= width else name) + arrow
        return line(names, header=True)

    def show_sort(self, sort_key: str, descending: bool) -> None:
        self.update(self.text_for(sort_key, descending))


class RunsTable(OptionList):
    """The runs the monitor shows: those its filter keeps, in its sort's order (`rearrange`). A
    run that changed without moving re-renders its one line; a new order rebuilds the list and
    the highlighted run stays highlighted."""
    DEFAULT_CSS = """
    RunsTable { height: auto; max-height: 45%; min-height: 3; border: none; padding: 0 1;
                text-wrap: nowrap; text-overflow: ellipsis; }
    RunsTable:focus { border: none; }
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self._shown: dict[str, dict[str, str]] = {}   # every run's cells, shown or filtered out
        self._views: dict[str, RunView] = {}
        self._order: list[str] = []                   # the ids on screen, top to bottom
        self.filter = RunFilter()
        self.sort: Sort = SORTS[0]
        self.reverse = False

    def upsert(self, v: RunView) -> None:
        """Note the run's cells; re-render its line when it is on screen and changed. A new run
        is placed at once (a changed one moves at the next `rearrange`)."""
        new = cells(v)
        old = self._shown.get(v.run_id)
        self._shown[v.run_id] = new
        self._views[v.run_id] = v
        if old is None:
            self.rearrange()
        elif new != old and v.run_id in self._order:
            self.replace_option_prompt(v.run_id, line(new))

    def remove(self, run_id: str) -> None:
        self._shown.pop(run_id, None)
        self._views.pop(run_id, None)
        if run_id in self._order:
            self.rearrange()

    def rearrange(self) -> None:
        """Apply the filter and sort to every known run."""
        self.set_order([v.run_id for v in arrange(list(self._views.values()), self.filter, self.sort, self.reverse)])

    def set_filter(self, text: str) -> RunFilter:
        self.filter = RunFilter.parse(text)
        self.rearrange()
        return self.filter

    def cycle_sort(self) -> Sort:
        """The next sort key (started, status, preset, seed, SR now, peak SR), in its natural direction."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.reverse = False
        self.rearrange()
        return self.sort

    def flip_sort(self) -> None:
        self.reverse = not self.reverse
        self.rearrange()

    @property
    def descending(self) -> bool:
        return self.sort.descending != self.reverse

    @property
    def total(self) -> int:
        return len(self._views)

    def set_order(self, run_ids: list[str]) -> None:
        """Show these runs (known to `upsert`) in this order; the highlighted run stays highlighted."""
        run_ids = [r for r in run_ids if r in self._shown]
        if run_ids == self._order:
            return
        keep = self.selected_id
        if run_ids[:len(self._order)] == self._order:  # only new runs at the end: append them
            self.add_options([Option(line(self._shown[r]), id=r) for r in run_ids[len(self._order):]])
        else:
            self.clear_options()
            self.add_options([Option(line(self._shown[r]), id=r) for r in run_ids])
            if keep in run_ids:
                self.highlighted = run_ids.index(keep)
            elif run_ids:
                self.highlighted = 0
        self._order = list(run_ids)

    @property
    def order(self) -> list[str]:
        return list(self._order)

    @property
    def row_count(self) -> int:
        return self.option_count

    @property
    def selected_id(self) -> str | None:
        if self.highlighted is None or not self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select(self, run_id: str) -> None:
        if run_id in self._order:
            self.highlighted = self._order.index(run_id)

    def select_last(self) -> None:
        if self.option_count:
            self.highlighted = self.option_count - 1
