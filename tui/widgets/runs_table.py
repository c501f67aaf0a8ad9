"""`RunsTable`: one row per run (mark, id, preset, status, iteration, env steps, SR now, peak
SR, ETA), updated cell by cell as the follower reports progress."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from ..model import RunView, duration, num, pct, short_label

# the id (without its date; the full id is on the detail line) is cut so that the numbers fit
# 80 columns; the preset comes last
COLUMNS = (("mark", " "), ("id", "id"), ("status", "status"), ("iter", "iter"), ("steps", "env steps"),
           ("sr", "SR now"), ("peak", "peak SR"), ("eta", "ETA"), ("preset", "preset"))
STATUS_STYLE = {"done": "green", "failed": "bold red", "stopped": "yellow", "running": "cyan", "queued": "dim"}


def cells(v: RunView) -> dict[str, object]:
    it = "-" if v.iteration is None else f"{v.iteration}" + (f"/{v.planned}" if v.planned else "")
    return {"mark": "●" if v.marked else " ", "id": short_label(v.run_id, 22), "preset": v.preset or "-",
            "status": Text(v.state, style=STATUS_STYLE.get(v.state, "")), "iter": it,
            "steps": num(v.env_steps), "sr": pct(v.sr_now), "peak": pct(v.peak_sr), "eta": duration(v.eta_s())}


class RunsTable(DataTable):
    DEFAULT_CSS = """
    RunsTable { height: auto; max-height: 12; min-height: 4; }
    """

    def __init__(self, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._shown: dict[str, dict] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def upsert(self, v: RunView) -> None:
        """Add the run's row, or update the cells that changed."""
        new = cells(v)
        old = self._shown.get(v.run_id)
        if old is None:
            self.add_row(*(new[k] for k, _ in COLUMNS), key=v.run_id)
        else:
            for k, _ in COLUMNS:
                if str(new[k]) != str(old[k]):
                    self.update_cell(v.run_id, k, new[k], update_width=k in ("id", "preset", "iter", "steps"))
        self._shown[v.run_id] = new

    def remove(self, run_id: str) -> None:
        if run_id in self._shown:
            self.remove_row(run_id)
            del self._shown[run_id]

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None

    def select(self, run_id: str) -> None:
        if run_id in self._shown:
            self.move_cursor(row=self.get_row_index(run_id))
