"""Terminal charts of SR against env steps, drawn with plotext: `sr_plot(curves)` returns the
chart as text (colour on a terminal; plain characters with a distinct marker per run
elsewhere). The preset's expected SR is drawn as a line of dashes; a group's CI band (a curve
with `low`/`high`, engine.figures.group_curves) as two dotted edges in its colour."""
from __future__ import annotations

from typing import Sequence

from engine.launcher import Curve

MARKERS = "*o+x#@%&"
COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "gray", "white")


def sr_plot(curves: Sequence[Curve], *, width: int = 70, height: int = 18, title: str = "SR vs env steps",
            color: bool = False) -> str:
    import plotext as plt  # here, not at the top: ~120 ms of a `playground` start (python -X importtime)

    pts = [c for c in curves if c.env_steps]
    if not pts:
        return f"{title}\n(no evaluations yet: nothing to plot)\n"
    plt.clear_figure()
    plt.plotsize(max(30, width), max(8, height))
    if not color:
        plt.theme("clear")
    x1 = max(max(c.env_steps) for c in pts)
    for i, c in enumerate(pts):  # a group's CI band first (its edges, dotted), so the lines draw over it
        if c.low is not None and c.high is not None:
            edge = {"marker": "·", **({"color": COLORS[i % len(COLORS)]} if color else {})}
            plt.plot(c.env_steps, [100 * y for y in c.low], **edge)
            plt.plot(c.env_steps, [100 * y for y in c.high], **edge)
    for i, c in enumerate(pts):
        style = {"marker": "hd", "color": COLORS[i % len(COLORS)]} if color else {"marker": MARKERS[i % len(MARKERS)]}
        plt.plot(c.env_steps, [100 * y for y in c.sr], label=c.label, **style)
    seen = set()
    for c in pts:
        if c.expected_sr is None or (c.preset or c.label) in seen:
            continue
        seen.add(c.preset or c.label)
        plt.plot([0, x1], [100 * c.expected_sr] * 2, marker="-", label=f"seed's SR ({c.preset}): {100 * c.expected_sr:.1f}%",
                 **({"color": "gray"} if color else {}))
    plt.ylim(0, 100)
    plt.yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    plt.xlabel("env steps")
    plt.title(title)
    text = plt.build()
    plt.clear_figure()
    return (text if color else plt.uncolorize(text)).rstrip() + "\n"
