"""The live progress display of a run being followed, and the end-of-run summary.

`RunMonitor` consumes launcher events (`engine.launcher.follow`) and keeps what the display
needs: iteration (of the planned number), env steps, SR now and at its peak, elapsed time and
an ETA. On a terminal it is drawn with `rich.live.Live`; elsewhere (pipes, logs, tests) each
new metrics row becomes one plain line.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from engine.launcher import planned_iterations, read_config

from .charts import sparkline
from .common import duration, num, pct


class RunMonitor:
    def __init__(self, run_dir: Path, planned: int | None = None):
        self.run_dir = Path(run_dir)
        conf = read_config(run_dir)
        self.conf = conf
        self.planned = planned if planned is not None else planned_iterations(conf)
        self.rows: list[dict] = []
        self.status: dict = {}
        self.t0 = time.monotonic()
        self.note = ""

    # --- state ---------------------------------------------------------------------------
    def add(self, event) -> None:
        if event.kind == "metrics":
            self.rows.append(event.data)
        elif event.kind == "status":
            self.status = dict(event.data)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    @property
    def iteration(self) -> int | None:
        it = self.last.get("iteration")
        return it if isinstance(it, int) else None

    @property
    def peak(self) -> tuple[float | None, dict]:
        best, at = None, {}
        for r in self.rows:
            sr = r.get("sr")
            if isinstance(sr, (int, float)) and (best is None or sr > best):
                best, at = sr, r
        return best, at

    def eta_s(self) -> float | None:
        it = self.iteration
        if it is None or not self.planned or it >= self.planned:
            return None if it is None or not self.planned else 0.0
        timed = [(r["iteration"], r["wall_s"]) for r in self.rows
                 if isinstance(r.get("iteration"), int) and isinstance(r.get("wall_s"), (int, float))]
        if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
            per = (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])
        elif timed and timed[-1][0] > 0:
            per = timed[-1][1] / timed[-1][0]
        else:
            return None
        return per * (self.planned - it)

    # --- drawing -------------------------------------------------------------------------
    def stats_line(self) -> str:
        it, last = self.iteration, self.last
        peak, at = self.peak
        it_s = f"{it if it is not None else '-'}" + (f"/{self.planned}" if self.planned else "")
        wall = last.get("wall_s")
        return (f"iter {it_s}  env steps {num(last.get('env_steps'))}  SR {pct(last.get('sr'))}  "
                f"peak {pct(peak)}" + (f" @ {num(at.get('env_steps'))}" if at else "")
                + f"  wall {duration(wall if isinstance(wall, (int, float)) else None)}  ETA {duration(self.eta_s())}")

    def render(self):
        state = self.status.get("status", "starting")
        head = Text()
        head.append(f"{self.run_dir.name}", style="bold")
        c = self.conf
        head.append(f"  {c.get('regime', '?')} {c.get('estimator', '?')} + {c.get('update', '?')}"
                    f"  env {c.get('env', '?')}  seed {c.get('seed', '?')}  ", style="dim")
        head.append(state, style={"running": "green", "queued": "yellow", "failed": "red",
                                  "stopped": "yellow", "done": "bold green"}.get(state, ""))
        if state == "queued" and not self.rows:
            head.append(f"  (worker starting, {duration(time.monotonic() - self.t0)})", style="dim")
        it = self.iteration or 0
        bar = ProgressBar(total=float(self.planned or 1), completed=float(min(it, self.planned or 1)), width=50)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(bar, Text(f"{it}/{self.planned or '?'} iterations"))
        srs = [r.get("sr") for r in self.rows if isinstance(r.get("sr"), (int, float))]
        parts: list[Any] = [head, grid, Text(self.stats_line())]
        if srs:
            parts.append(Text("SR  " + sparkline(srs, 60), style="cyan"))
        if self.note:
            parts.append(Text(self.note, style="yellow"))
        return Group(*parts)

    def plain_line(self) -> str:
        return self.stats_line()


def summary_table(run_dir: Path, status: dict, rows: list[dict]) -> Table:
    """The end-of-run summary (also the header of `playground show`)."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    peak_sr, peak_row = None, {}
    for r in rows:
        sr = r.get("sr")
        if isinstance(sr, (int, float)) and (peak_sr is None or sr > peak_sr):
            peak_sr, peak_row = sr, r
    last = rows[-1] if rows else {}
    conf = read_config(run_dir)
    st = status.get("status", "unknown")
    t.add_row("run", run_dir.name)
    t.add_row("status", Text(st, style={"done": "green", "failed": "red", "stopped": "yellow"}.get(st, ""))
              + Text(f"  (exit code {status.get('exit_code')})" if status.get("exit_code") is not None else ""))
    t.add_row("config", f"{conf.get('preset') or '-'}: {conf.get('regime', '?')} {conf.get('estimator', '?')} + "
                        f"{conf.get('update', '?')}, env {conf.get('env', '?')}, seed {conf.get('seed', '?')}, "
                        f"exp_name {conf.get('exp_name') or '-'}")
    planned = planned_iterations(conf)
    t.add_row("iterations", f"{num(last.get('iteration'))}" + (f" of {planned}" if planned else ""))
    t.add_row("env steps", num(last.get("env_steps")))
    wall = last.get("wall_s")
    t.add_row("wall time", duration(wall if isinstance(wall, (int, float)) else None))
    t.add_row("final SR", pct(last.get("sr")) + (f"  (at end of episode {pct(last.get('sr_at_end'))})"
                                                 if isinstance(last.get("sr_at_end"), (int, float)) else ""))
    t.add_row("peak SR", pct(peak_sr) + (f"  at iteration {peak_row.get('iteration')}, "
                                         f"{num(peak_row.get('env_steps'))} env steps" if peak_row else ""))
    t.add_row("started", f"{status.get('started') or '-'}  ended {status.get('ended') or '-'}")
    t.add_row("directory", str(run_dir))
    if status.get("error"):
        t.add_row("error", Text(str(status["error"]), style="red"))
    return t
