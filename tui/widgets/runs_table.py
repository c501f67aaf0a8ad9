"""`RunsTable`: one line per run (mark, id, status, iteration, env steps, SR now, peak SR, ETA,
preset) under a `RunsHeader`. It is an `OptionList` of fixed-width lines, so that a changed run
re-renders one line: a DataTable re-renders every cell on any update, which cost ~8% of a core
while following 8 live runs (see `python -m tui.bench`)."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..model import RunView, duration, num, pct, short_label

# (key, header, width); the preset takes what is left
COLUMNS = (("mark", "", 1), ("id", "id", 19), ("status", "status", 7), ("iter", "iter", 10),
           ("steps", "env steps", 9), ("sr", "SR now", 6), ("peak", "peak SR", 7), ("eta", "ETA", 6),
           ("preset", "preset", 0))
STATUS_STYLE = {"done": "green", "failed": "bold red", "stopped": "yellow", "running": "cyan", "queued": "dim",
                "stalled": "bold magenta"}


def cells(v: RunView) -> dict[str, str]:
    it = "-" if v.iteration is None else f"{v.iteration}" + (f"/{v.planned}" if v.planned else "")
    return {"mark": "●" if v.marked else " ", "id": short_label(v.run_id, 19), "status": v.state, "iter": it,
            "steps": num(v.env_steps), "sr": pct(v.sr_now), "peak": pct(v.peak_sr), "eta": duration(v.eta_s()),
            "preset": v.preset or "-"}


def line(values: dict[str, str], *, header: bool = False) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, (key, _, width) in enumerate(COLUMNS):
        value = values[key]
        cell = value if not width else (value[:width - 1] + "…" if len(value) > width else value).ljust(width)
        style = "bold" if header else (STATUS_STYLE.get(value, "") if key == "status" else
                                       "bold yellow" if key == "mark" else "")
        t.append(cell, style=style)
        if i < len(COLUMNS) - 1:
            t.append(" ")
    return t


class RunsHeader(Static):
    DEFAULT_CSS = """
    RunsHeader { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw):
        super().__init__(line({k: h for k, h, _ in COLUMNS}, header=True), **kw)


class RunsTable(OptionList):
    DEFAULT_CSS = """
    RunsTable { height: auto; max-height: 10; min-height: 3; border: none; padding: 0 1;
                text-wrap: nowrap; text-overflow: ellipsis; }
    RunsTable:focus { border: none; }
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self._shown: dict[str, dict[str, str]] = {}

    def upsert(self, v: RunView) -> None:
        """Add the run's line in run-id order (ids start with the start time, so oldest first), or
        re-render it when something on it changed. The highlighted run stays highlighted."""
        new = cells(v)
        old = self._shown.get(v.run_id)
        if old is None:
            later = [rid for rid in self._shown if rid > v.run_id]
            self._shown[v.run_id] = new
            if not later:
                self.add_option(Option(line(new), id=v.run_id))
            else:  # it belongs before some rows (runs found in another order): rebuild in order
                keep = self.selected_id
                self.clear_options()
                self.add_options([Option(line(self._shown[rid]), id=rid) for rid in sorted(self._shown)])
                if keep is not None:
                    self.highlighted = self.get_option_index(keep)
            return
        if new != old:
            self.replace_option_prompt(v.run_id, line(new))
        self._shown[v.run_id] = new

    def remove(self, run_id: str) -> None:
        if run_id in self._shown:
            self.remove_option(run_id)
            del self._shown[run_id]

    @property
    def row_count(self) -> int:
        return self.option_count

    @property
    def selected_id(self) -> str | None:
        if self.highlighted is None or not self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select(self, run_id: str) -> None:
        if run_id in self._shown:
            self.highlighted = self.get_option_index(run_id)

    def select_last(self) -> None:
        if self.option_count:
            self.highlighted = self.option_count - 1
