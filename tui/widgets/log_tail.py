"""`LogTail`: the last lines of a run's `engine.log`, as many as fit, wrapped to the panel's width
(the per-iteration line carries SR, KL, losses and time) and without the date, milliseconds and the
INFO level. Writing repaints the panel
without a layout pass (a scrolling `Log` relayouts the whole screen on every write, which was
a third of the monitor's CPU while following live runs)."""
from __future__ import annotations

import re
from collections import deque

from rich.text import Text
from textual.widgets import Static


# the date of a log line's time stamp, its milliseconds and an INFO level: the time is enough
DATE = re.compile(r"^\d{4}-\d{2}-\d{2} (\d{2}:\d{2}:\d{2})(,\d+)?( INFO)?")


class LogTail(Static):
    DEFAULT_CSS = """
    LogTail { height: 1fr; }
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
        width = max(10, self.content_size.width or 80)
        shown: list[str] = []
        used = 0
        for line in reversed(self.lines):  # the newest lines that fit once wrapped
            line = DATE.sub(r"\1", line, count=1)
            need = max(1, -(-len(line) // width))
            if used + need > rows and shown:
                break
            shown.append(line)
            used += need
        self.update(Text("\n".join(reversed(shown)), overflow="fold"), layout=False)

    def on_resize(self) -> None:
        self._show()
