"""`LogTail`: the last lines of a run's `engine.log`, as many as fit. Writing repaints the panel
without a layout pass (a scrolling `Log` relayouts the whole screen on every write, which was
a third of the monitor's CPU while following live runs)."""
from __future__ import annotations

import re
from collections import deque

from rich.text import Text
from textual.widgets import Static


DATE = re.compile(r"^\d{4}-\d{2}-\d{2} ")  # the date of a log line's time stamp: the time is enough


class LogTail(Static):
    DEFAULT_CSS = """
    LogTail { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, max_lines: int = 500, **kw):
        super().__init__("", **kw)
        self.lines: deque[str] = deque(maxlen=max_lines)

    def write_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self._show()

    def clear(self) -> None:
        self.lines.clear()
        self._show()

    def _show(self) -> None:
        rows = max(1, self.content_size.height or 1)
        shown = [DATE.sub("", line, count=1) for line in list(self.lines)[-rows:]]
        self.update(Text("\n".join(shown), no_wrap=True, overflow="ellipsis"), layout=False)

    def on_resize(self) -> None:
        self._show()
