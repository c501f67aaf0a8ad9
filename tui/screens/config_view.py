"""A run's resolved config (`ConfigScreen`: its config.toml as the launcher wrote it, comments
included) and the diff of two runs (`DiffScreen`: the keys whose values differ, side by side),
opened from the monitor (`i`, `x`). Both read through `tui.core` (the launcher's `config_text`
/ `diff_runs`); a run without a readable config.toml is a message, not a traceback."""
from __future__ import annotations

from rich.markup import escape
from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .. import core
from ..model import RunView
from .dialogs import DIALOG_CSS, TextDialog


def shown(value) -> str:
    """A config value as config.toml writes it; a key one run lacks: (absent)."""
    if value is None:
        return "(absent)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ConfigScreen(TextDialog):
    """The selected run's config.toml (syntax-highlighted, scrollable)."""
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfigScreen").replace("width: 70;", "width: 100;")
    BINDINGS = [Binding("escape,q,i", "close", "Close")]

    def __init__(self, view: RunView, text: str):
        super().__init__()
        self.view, self.text = view, text

    def heading(self) -> str:
        return f"[b]config.toml of {escape(self.view.run_id)}[/] [dim]({escape(str(self.view.path))})[/]"

    def body(self) -> ComposeResult:
        yield Static(Syntax(self.text, "toml", theme="ansi_dark", background_color="default", word_wrap=True),
                     id="config-text")


class DiffScreen(TextDialog):
    """Two runs' configs: the keys that differ, run A's value beside run B's."""
    DEFAULT_CSS = DIALOG_CSS.format(name="DiffScreen").replace("width: 70;", "width: 95%;") + """
    DiffScreen DataTable { height: auto; }
    """
    BINDINGS = [Binding("escape,q,x", "close", "Close")]

    def __init__(self, diff: core.ConfigDiff):
        super().__init__()
        self.diff = diff

    def heading(self) -> str:
        d = self.diff
        n = len(d.rows)
        what = f"{n} key{'s' if n != 1 else ''} differ" if n else "the same config"
        return f"[b]{escape(d.a)}[/] vs [b]{escape(d.b)}[/]: {what} ({d.same} the same)"

    def body(self) -> ComposeResult:
        yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("key", self.diff.a, self.diff.b)
        for key, a, b in self.diff.rows:
            t.add_row(key, shown(a), shown(b), key=key)
