"""`SRPlot`: success rate against env steps for one or more runs (textual-plot's PlotWidget),
with a legend, the y axis fixed to 0..100%, redrawn when its size changes.

`grouped(views)`: the monitor's overlay grouped by configuration (engine.launcher.grouped_series):
one curve per configuration, the IQM over seeds with its 95% CI band's edges dotted in the same
colour; a single run stays its own line."""
from __future__ import annotations

from textual_plot import HiResMode, LegendLocation, PlotWidget

from engine.launcher import grouped_series

# line colours: the selected run first, then the overlay's runs in this order
COLOURS = ("bright_cyan", "bright_yellow", "bright_magenta", "bright_green", "bright_red", "bright_blue",
           "orange1", "white")


class SRPlot(PlotWidget):
    DEFAULT_CSS = """
    SRPlot { height: 1fr; min-height: 6; }
    """

    def __init__(self, **kw):
        super().__init__(allow_pan_and_zoom=False, **kw)
        self._shown: tuple = ()
        self._drawing = False
        self._legend_shown: tuple | None = None

    def on_mount(self) -> None:
        self.margin_top = 0
        self.margin_bottom = 2
        self.margin_left = 6
        self.set_xlabel("env steps")

    def show(self, series: list[tuple]) -> None:
        """Draw these (label, env steps, SR 0..1[, low, high]) curves, a band's edges (`low`, `high`:
        0..1 per point) dotted; no-op when nothing changed."""
        key = tuple((lab, len(xs), xs[-1] if xs else None, ys[-1] if ys else None) for lab, xs, ys, *_ in series)
        if key == self._shown:
            return
        self._shown = key
        self._drawing = True  # one legend update at the end, not one per curve
        self.clear()
        self.set_ylimits(0.0, 100.0)  # SR in %: always the full range
        drawn = False
        for i, (label, xs, ys, *edges) in enumerate(series):
            if not xs:
                continue
            drawn = True
            pts = [100.0 * y for y in ys]
            for edge in (e for e in edges if e is not None and len(xs) > 1):
                self.plot(xs, [100.0 * y for y in edge], line_style=f"dim {COLOURS[i % len(COLOURS)]}",
                          hires_mode=HiResMode.QUADRANT)
            if len(xs) == 1:
                self.scatter(xs, pts, marker="●", marker_style=COLOURS[i % len(COLOURS)], label=label)
            else:
                self.plot(xs, pts, line_style=COLOURS[i % len(COLOURS)], hires_mode=HiResMode.BRAILLE,
                          label=label)
        self._drawing = False
        legend = (drawn, tuple(self._labels))
        if legend != self._legend_shown:
            self._legend_shown = legend
            self.show_legend(LegendLocation.TOPLEFT, is_visible=drawn)

    def _update_legend(self) -> None:
        # textual-plot rewrites (and relayouts) the legend on every clear() and plot(); while
        # `show` draws, the legend is left alone and updated once, only when its labels change
        if not self._drawing:
            super()._update_legend()

    def on_resize(self) -> None:
        self.refresh(layout=True)  # textual-plot resizes its canvases on a layout refresh


def grouped(views: list) -> list[tuple]:
    """Curves of these run views (`path`, `config`, `rows`) grouped by configuration, for `SRPlot.show`."""
    out = []
    for g in grouped_series([(v.path, v.config, v.rows) for v in views]):
        n = g["n"]
        out.append((f"{g['label']} ({'1 run' if n == 1 else f'IQM, n={n}'})", g["env_steps"], g["sr"], g["low"],
                    g["high"]))
    return out
