"""Figures of runs for files (PNG, SVG, PDF) with matplotlib: SR against env steps, one curve
per run, the seed's expected SR of each preset as a dashed line. Used by
`playground compare RUN... --out FILE` and by the TUI's figure export, so both write the same
figure.

- `curve_of_run(run_dir)` / `curves_of_runs(run_dirs)`: the `Curve`s (label, points, preset
  and the preset's expected SR) of run directories.
- `sr_figure(curves, title=)`: a `matplotlib.figure.Figure` (no pyplot, no GUI backend:
  safe from any thread).
- `save_sr_figure(curves, out, dpi=)`: writes the file; the format follows the suffix;
  `export_sr_overlay(run_dirs, out)` does both steps for run directories. `save_figure(fig, out)`
  writes any figure (through a temporary name: never half a file).
- `panels_figure(panels)`: side-by-side axes (docs/results.md's figure: online rows against env
  steps, offline rows against iterations, since an offline run's env steps do not grow).
- `group_curves(run_dirs)`: runs grouped by configuration (engine.analysis.stats.group_runs):
  a group of several seeds is one curve, the IQM over seeds per evaluation, with `low`/`high`
  (its 95% bootstrap CI) drawn as a band; a single run stays a plain line. The legend names the
  configuration (preset and the keys that differ) and n; a caption line under the axes says
  what the line and the band are.
- `budget_figure(points)` / `save_budget_figure(points, out)`: the seed's Phase 1c figure (final SR
  against the online budget per arm) of `playground budget`.

matplotlib is imported only when a figure is made: `import matplotlib.figure` took 0.9 s here
(time.perf_counter, the shared 2-core machine), and every `playground` command imports this
module through engine.launcher.
"""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from engine.analysis.stats import grouped_series
from engine.config.loading import preset_metadata
from engine.errors import UserError
from engine.records import read_metrics
from engine.run_files import read_config
from engine.sr import sr_series

FORMATS = (".png", ".svg", ".pdf")


@dataclass
class Curve:
    label: str
    env_steps: list[float]
    sr: list[float]                       # 0..1
    preset: str | None = None
    expected_sr: float | None = None      # the seed's SR for the preset, 0..1
    meta: dict = field(default_factory=dict)
    low: list[float] | None = None        # a group's band (0..1): the 95% CI of `sr` at each point
    high: list[float] | None = None
    n: int = 1                            # runs (seeds) behind the curve


BAND_CAPTION = ("Line: IQM of the success rate over seeds at each evaluation; band: its 95% stratified bootstrap "
                "CI (10,000 resamples). Groups: runs with the same resolved config except the seed; "
                "single runs: plain lines.")


def curve_from_rows(label: str, rows: Iterable[dict], *, preset: str | None = None,
                    expected_sr: float | None = None) -> Curve:
    xs, ys = sr_series(rows)
    return Curve(label, xs, ys, preset or None, expected_sr)


def curve_of_run(run_dir: str | Path, label: str | None = None) -> Curve:
    """The SR curve of one run directory, labelled with its id and experiment name."""
    run_dir = Path(run_dir)
    conf = read_config(run_dir)
    preset = str(conf.get("preset") or "") or None
    expected = preset_metadata(preset).get("expected_sr") if preset else None
    name = conf.get("exp_name") or preset or ""
    return curve_from_rows(label or (f"{run_dir.name} ({name})" if name and name not in run_dir.name else run_dir.name),
                           read_metrics(run_dir), preset=preset,
                           expected_sr=float(expected) if isinstance(expected, (int, float)) else None)


def curves_of_runs(run_dirs: Sequence[str | Path]) -> list[Curve]:
    return [curve_of_run(d) for d in run_dirs]


def group_curves(run_dirs: Sequence[str | Path], *, x: str = "env_steps") -> list[Curve]:
    """One curve per configuration: the IQM over seeds with its CI band, or a single run's line;
    `x = "iteration"` puts the iteration on the x axis instead of env steps (offline runs)."""
    out = []
    for g in grouped_series([(d, read_config(d), read_metrics(Path(d))) for d in run_dirs]):
        expected = preset_metadata(g["preset"]).get("expected_sr") if g["preset"] else None
        expected = float(expected) if isinstance(expected, (int, float)) else None
        n = g["n"]
        label = f"{g['label']} ({'1 run' if n == 1 else f'n={n}'})"
        xs = [float(i) for i in g["iterations"]] if x == "iteration" else g["env_steps"]
        out.append(Curve(label, xs, g["sr"], g["preset"], expected, {"runs": g["runs"]}, g["low"], g["high"], n))
    return out


ENV_STEPS_LABEL = "environment steps (count; MC re-rollouts included)"


def draw_sr_axes(ax, curves: Sequence[Curve], *, xscale: str = "linear", xlabel: str = ENV_STEPS_LABEL,
                 first_color: int = 0) -> None:
    """Draw `curves` (SR in percent) on `ax`: lines, their bands, the presets' expected SRs dashed."""
    from matplotlib.ticker import EngFormatter, NullFormatter, PercentFormatter  # lazy: see the module docstring

    colors = [f"C{i}" for i in range(10)]
    for i, c in enumerate(curves, start=first_color):
        ax.plot(c.env_steps, [100 * y for y in c.sr], marker="o", markersize=3, linewidth=1.6,
                color=colors[i % len(colors)], label=c.label)
        if c.low is not None and c.high is not None:
            ax.fill_between(c.env_steps, [100 * y for y in c.low], [100 * y for y in c.high],
                            color=colors[i % len(colors)], alpha=0.2, linewidth=0)
    shown: set[str] = set()
    for i, c in enumerate(curves, start=first_color):
        key = c.preset or c.label
        if c.expected_sr is None or key in shown:
            continue
        shown.add(key)
        ax.axhline(100 * c.expected_sr, linestyle="--", linewidth=1.2, color=colors[i % len(colors)], alpha=0.8,
                   label=f"seed's SR for {c.preset or c.label}: {100 * c.expected_sr:.1f}%")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate (%, deterministic eval)")
    ax.set_ylim(0, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    if xscale == "log":  # runs of very different lengths in one figure; x = 0 (the start) is left out
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="best", fontsize="small")


def _caption(fig, curves: Sequence[Curve], caption: str | None, width_in: float) -> None:
    if caption is None and any(c.low is not None for c in curves):
        caption = BAND_CAPTION
    if caption:
        fig.supxlabel(textwrap.fill(caption, width=int(15 * width_in)), fontsize="x-small")


def sr_figure(curves: Sequence[Curve], *, title: str = "Success rate vs env steps", width_in: float = 8.0,
              height_in: float = 4.8, caption: str | None = None, xscale: str = "linear"):
    """One axes: every curve (SR in percent) against env steps, bands where a curve has them,
    the expected SRs dashed, and `caption` (default: the band's meaning when a band is drawn)."""
    from matplotlib.figure import Figure  # lazy: 0.9 s (module docstring)

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    draw_sr_axes(ax, curves, xscale=xscale)
    ax.set_title(title)
    _caption(fig, curves, caption, width_in)
    return fig


def panels_figure(panels: Sequence[tuple[str, Sequence[Curve], str, str]], *, title: str,
                  caption: str | None = None, height_in: float = 4.8):
    """Side by side axes, one per (subtitle, curves, x label, x scale) panel that has curves; one caption."""
    from matplotlib.figure import Figure  # lazy: 0.9 s (module docstring)

    panels = [p for p in panels if any(c.env_steps for c in p[1])]
    width_in = 6.5 * max(1, len(panels))
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    first = 0
    for ax, (sub, curves, xlabel, xscale) in zip(axes, panels):
        draw_sr_axes(ax, curves, xscale=xscale, xlabel=xlabel, first_color=first)
        ax.set_title(sub, fontsize="medium")
        first += len(curves)
    fig.suptitle(title)
    _caption(fig, [c for p in panels for c in p[1]], caption, width_in)
    return fig


def check_out(out: str | Path, dpi: int = 100) -> Path:
    """`out` as a Path; UserError for a suffix other than .png/.svg/.pdf or a dpi out of 50..1200."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {out}: the figure is written as {', '.join(FORMATS)}; give a file name ending "
                        "in one of them")
    if not 50 <= dpi <= 1200:
        raise UserError(f"--dpi {dpi}: give a resolution between 50 and 1200 (300 for print)")
    return out


def save_figure(fig, out: str | Path, *, dpi: int = 100) -> Path:
    """Write a matplotlib figure to `out` (.png, .svg or .pdf) at `dpi`, whole or not at all;
    UserError for another suffix, a dpi out of 50..1200 or an unwritable place."""
    out = check_out(out, dpi)
    tmp = out.with_name(f".{out.name}.part")
    try:  # written whole or not at all: a reader never sees half a file
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, format=out.suffix.lower().lstrip("."), dpi=dpi)
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--out {out}: cannot write the figure ({e.strerror or e})") from None
    return out


def save_sr_figure(curves: Sequence[Curve], out: str | Path, *, title: str = "Success rate vs env steps",
                   dpi: int = 100, caption: str | None = None, xscale: str = "linear") -> Path:
    """Write the figure of `curves` to `out` (see `save_figure`); UserError when nothing was evaluated yet."""
    check_out(out, dpi)
    if not any(c.env_steps for c in curves):
        raise UserError("no evaluations yet in these runs: nothing to draw")
    return save_figure(sr_figure(curves, title=title, caption=caption, xscale=xscale), out, dpi=dpi)


def export_sr_overlay(run_dirs: Sequence[str | Path], out: str | Path, *,
                      title: str = "Success rate vs env steps") -> Path:
    """The SR curves of these run directories in one figure, written to `out` (the TUI's export)."""
    return save_sr_figure(curves_of_runs(run_dirs), out, title=title)


def budget_figure(points: Sequence[dict], *, title: str = "Final SR vs online budget (the seed's Phase 1c)"):
    """The Phase 1c figure from `engine.launcher.budget`'s points ({arm, budget, iqm or mean, ci95}):
    final SR against online env steps, one line per arm (the IQM over seeds where the points have it)
    with its 95% bootstrap intervals; the offline arm (budget 0) is
    also drawn as a dotted level, and offline->online starts from it."""
    from matplotlib.figure import Figure  # lazy: 0.9 s (module docstring)
    from matplotlib.ticker import EngFormatter, PercentFormatter  # lazy: see the module docstring

    fig = Figure(figsize=(7.0, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    offline = next((p for p in points if p["arm"] == "offline" and p.get("mean") is not None), None)
    for i, arm in enumerate(("online", "offline->online", "offline")):
        pts = sorted((p for p in points if p["arm"] == arm and p.get("mean") is not None), key=lambda p: p["budget"])
        if arm == "offline->online" and offline is not None:
            pts = [offline] + pts
        if not pts:
            continue
        level = [p["iqm"] if p.get("iqm") is not None else p["mean"] for p in pts]
        xs, ys = [p["budget"] for p in pts], [100 * y for y in level]
        lo = [100 * (y - p["ci95"][0]) if p.get("ci95") else 0.0 for y, p in zip(level, pts)]
        hi = [100 * (p["ci95"][1] - y) if p.get("ci95") else 0.0 for y, p in zip(level, pts)]
        n = max(p["n"] for p in pts)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=f"C{i}", label=f"{arm} (n={n} seeds)")
        if arm == "offline":
            ax.axhline(ys[0], linestyle=":", color=f"C{i}", alpha=0.7)
    ax.set_xlabel("online env steps (collected; MC re-rollouts not counted)")
    ax.set_ylabel("final success rate (deterministic eval), IQM over seeds")
    ax.set_ylim(0, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return fig


def save_budget_figure(points: Sequence[dict], out: str | Path) -> Path:
    """Write `budget_figure(points)` to `out` (.png, .svg or .pdf; see `save_figure`)."""
    check_out(out, 100)
    if not any(p.get("mean") is not None for p in points):
        raise UserError("no finished run has an evaluation: nothing to draw")
    return save_figure(budget_figure(points), out)
