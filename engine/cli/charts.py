"""Terminal charts drawn with plain characters: SR (0..100%) against env steps.

`sr_chart(series)` draws one or more series into a character grid: each data point is the
series' marker (`*`, `o`, `+`, ...), the segments between points are `.` in the series'
colour, so a chart reads the same without colour (markers) and with it. `sparkline(values)`
is the one-line version used by the live progress display.
"""
from __future__ import annotations

from typing import Sequence

from rich.text import Text

MARKERS = "*o+x#@%&"
COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_white", "bright_cyan")
SPARK = "▁▂▃▄▅▆▇█"


def human_steps(x: float) -> str:
    x = float(x)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.1f}{suf}".replace(".0" + suf, suf)
    return f"{x:g}"


def sr_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, width: int = 60,
             height: int = 15, title: str = "success rate vs env steps") -> Text:
    """Series are (label, env_steps, sr in 0..1). Returns a rich Text (`.plain` for no colour)."""
    width, height = max(10, width), max(5, height)
    pts = [(lab, list(xs), list(ys)) for lab, xs, ys in series]
    allx = [x for _, xs, _ in pts for x in xs]
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    if not allx:
        out.append("(no evaluations yet: nothing to plot)\n", style="dim")
        return out
    x0, x1 = min(0.0, min(allx)), max(allx)
    span = (x1 - x0) or 1.0
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]

    def col(x: float) -> int:
        return max(0, min(width - 1, round((x - x0) / span * (width - 1))))

    def row(y: float) -> int:
        y = min(1.0, max(0.0, y))
        return max(0, min(height - 1, round((1.0 - y) * (height - 1))))

    for i, (_, xs, ys) in enumerate(pts):
        style = COLORS[i % len(COLORS)]
        pairs = sorted((x, y) for x, y in zip(xs, ys) if y is not None)
        for (xa, ya), (xb, yb) in zip(pairs, pairs[1:]):   # segments first, points drawn over them
            ca, cb = col(xa), col(xb)
            for c in range(ca + 1, cb):
                t = (c - ca) / (cb - ca)
                r = row(ya + t * (yb - ya))
                if grid[r][c][0] == " ":
                    grid[r][c] = (".", style)
        for x, y in pairs:
            grid[row(y)][col(x)] = (MARKERS[i % len(MARKERS)], style + " bold")
    labels = {0: "100%", (height - 1) // 2: " 50%", height - 1: "  0%"}
    if height >= 9:
        labels[(height - 1) // 4] = " 75%"
        labels[3 * (height - 1) // 4] = " 25%"
    for r in range(height):
        out.append(f"{labels.get(r, ''):>4} |", style="dim")
        for ch, style in grid[r]:
            out.append(ch, style=style or None)
        out.append("\n")
    out.append("     +" + "-" * width + "\n", style="dim")
    left, mid, right = human_steps(x0), human_steps(x0 + span / 2), human_steps(x1)
    axis = [" "] * (width + 6)
    for pos, lab in ((6, left), (6 + width // 2 - len(mid) // 2, mid), (6 + width - len(right), right)):
        for j, ch in enumerate(lab):
            if 0 <= pos + j < len(axis):
                axis[pos + j] = ch
    out.append("".join(axis).rstrip() + "   env steps\n", style="dim")
    if len(pts) > 1 or (pts and pts[0][0]):
        for i, (lab, _, _) in enumerate(pts):
            out.append(f"  {MARKERS[i % len(MARKERS)]} ", style=COLORS[i % len(COLORS)] + " bold")
            out.append(f"{lab}\n")
    return out


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """The last `width` values in 0..1 as block characters."""
    vals = [min(1.0, max(0.0, v)) for v in values if isinstance(v, (int, float))][-width:]
    return "".join(SPARK[min(len(SPARK) - 1, int(v * len(SPARK)))] for v in vals)
