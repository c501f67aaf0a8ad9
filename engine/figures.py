"""Figures of runs for files (PNG, SVG, PDF) with matplotlib: SR against env steps, one curve
per run, the seed's expected SR of each preset as a dashed line. Used by
`playground compare RUN... --out FILE` and by the TUI's figure export, so both write the same
figure.

- `curve_of_run(run_dir)` / `curves_of_runs(run_dirs)`: the `Curve`s (label, points, preset
  and the preset's expected SR) of run directories.
- `sr_figure(curves, title=)`: a `matplotlib.figure.Figure` (no pyplot, no GUI backend:
  safe from any thread).
- `save_sr_figure(curves, out)`: writes the file (atomically: a temporary file, then renamed); the
  format follows the suffix;
  `export_sr_overlay(run_dirs, out)` does both steps for run directories.

matplotlib is imported only when a figure is made.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from engine.errors import UserError

FORMATS = (".png", ".svg", ".pdf")


@dataclass
class Curve:
    label: str
    env_steps: list[float]
    sr: list[float]                       # 0..1
    preset: str | None = None
    expected_sr: float | None = None      # the seed's SR for the preset, 0..1
    meta: dict = field(default_factory=dict)


def curve_from_rows(label: str, rows: Iterable[dict], *, preset: str | None = None,
                    expected_sr: float | None = None) -> Curve:
    from engine.launcher.progress import sr_series

    xs, ys = sr_series(rows)
    return Curve(label, xs, ys, preset or None, expected_sr)


def curve_of_run(run_dir: str | Path, label: str | None = None) -> Curve:
    """The SR curve of one run directory, labelled with its id and experiment name."""
    from engine.config.loading import preset_metadata
    from engine.launcher.listing import read_config
    from engine.records import read_metrics

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


def sr_figure(curves: Sequence[Curve], *, title: str = "Success rate vs env steps", width_in: float = 8.0,
              height_in: float = 4.8):
    """One axes: every curve (SR in percent) against env steps, the expected SRs dashed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter, PercentFormatter

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    for i, c in enumerate(curves):
        ax.plot(c.env_steps, [100 * y for y in c.sr], marker="o", markersize=3, linewidth=1.6,
                color=colors[i % len(colors)], label=c.label)
    shown: set[str] = set()
    for i, c in enumerate(curves):
        key = c.preset or c.label
        if c.expected_sr is None or key in shown:
            continue
        shown.add(key)
        ax.axhline(100 * c.expected_sr, linestyle="--", linewidth=1.2, color=colors[i % len(colors)], alpha=0.8,
                   label=f"seed's SR for {c.preset or c.label}: {100 * c.expected_sr:.1f}%")
    ax.set_xlabel("env steps (MC re-rollouts included)")
    ax.set_ylabel("success rate (deterministic eval)")
    ax.set_ylim(0, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    if curves:
        ax.legend(loc="best", fontsize="small")
    return fig


def save_sr_figure(curves: Sequence[Curve], out: str | Path, *, title: str = "Success rate vs env steps") -> Path:
    """Write the figure of `curves` to `out` (.png, .svg or .pdf); UserError for another suffix
    or an unwritable place."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {out}: the figure is written as {', '.join(FORMATS)}; give a file name ending "
                        "in one of them")
    if not any(c.env_steps for c in curves):
        raise UserError("no evaluations yet in these runs: nothing to draw")
    fig = sr_figure(curves, title=title)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # a reader never sees a half-written figure
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, format=out.suffix.lower().lstrip("."))
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--out {out}: cannot write the figure ({e.strerror or e})") from None
    return out


def export_sr_overlay(run_dirs: Sequence[str | Path], out: str | Path, *,
                      title: str = "Success rate vs env steps") -> Path:
    """The SR curves of these run directories in one figure, written to `out` (the TUI's export)."""
    return save_sr_figure(curves_of_runs(run_dirs), out, title=title)
