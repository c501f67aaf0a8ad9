"""The CLI's view of a run or a pretraining job being followed, and the end-of-run summary.

The state is `engine.launcher.RunProgress` (status, iteration of the planned number, env steps,
SR now, peak SR, ETA); this module only draws it: `ProgressView.render()` is a rich progress
bar with the iteration count, SR now, peak SR and ETA (for `rich.live.Live` on a terminal),
`ProgressView.plain_line()` the same as one line for pipes, logs and CI. A pretraining job's
ladder roles, as they are chosen, are extra lines (`note_line`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from engine.launcher import RunProgress, read_config

from .common import duration, num, pct

SPARK = "▁▂▃▄▅▆▇█"
STATE_STYLE = {"running": "green", "queued": "yellow", "failed": "red", "stopped": "yellow", "done": "bold green"}


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """The last `width` values in 0..1 as block characters."""
    vals = [min(1.0, max(0.0, v)) for v in values if isinstance(v, (int, float))][-width:]
    return "".join(SPARK[min(len(SPARK) - 1, int(v * len(SPARK)))] for v in vals)


def _wall(prog: RunProgress) -> float | None:
    return prog.wall_s


class ProgressView:
    """Draws one followed run or pretraining job."""

    def __init__(self, prog: RunProgress, *, pretrain: bool = False):
        self.prog = prog
        self.pretrain = pretrain
        self.t0 = time.monotonic()

    def stats_line(self) -> str:
        p = self.prog
        it = p.iteration
        it_s = f"{it if it is not None else '-'}" + (f"/{p.planned}" if p.planned else "")
        what = "PPO iter" if self.pretrain else "iter"
        pk = p.peak
        return (f"{what} {it_s}  env steps {num(p.env_steps)}  SR {pct(p.sr)}  peak {pct(pk.sr)}"
                + (f" @ {num(pk.env_steps)}" if pk.env_steps is not None else "")
                + f"  wall {duration(_wall(p))}  ETA {duration(p.eta_s())}")

    def plain_line(self) -> str:
        if self.pretrain:
            return f"pretraining {self.prog.conf.get('env', '?')}: {self.stats_line()}"
        return self.stats_line()

    @staticmethod
    def note_line(note: dict) -> str:
        """One chosen ladder role of a pretraining job."""
        if "det_sr" in note:
            extra = f"det SR {pct(note.get('det_sr'))}, stoch SR {pct(note.get('stoch_sr'))}"
        else:
            r2 = note.get("fit_r2")
            extra = f"critic fitted on {note.get('fitted_on')}, R^2 {r2:.3f}" if isinstance(r2, float) else \
                f"critic fitted on {note.get('fitted_on')}"
        return f"  ladder: {note.get('role')} = iteration {note.get('iteration')} ({extra})"

    def _head(self) -> Text:
        p, c = self.prog, self.prog.conf
        head = Text()
        head.append(p.run_dir.name if p.run_dir else "run", style="bold")
        if self.pretrain:
            head.append(f"  pretraining the checkpoint ladder of {c.get('env', '?')}  ", style="dim")
        else:
            head.append(f"  {c.get('regime', '?')} {c.get('estimator', '?')} + {c.get('update', '?')}"
                        f"  env {c.get('env', '?')}  seed {c.get('seed', '?')}  ", style="dim")
        head.append(p.state, style=STATE_STYLE.get(p.state, ""))
        if p.state in ("queued", "starting") and not p.rows:
            head.append(f"  (worker starting, {duration(time.monotonic() - self.t0)})", style="dim")
        return head

    def render(self) -> Group:
        p = self.prog
        it = p.iteration or 0
        total = float(p.planned or 1)
        bar = ProgressBar(total=total, completed=float(min(it, p.planned or 1)) if p.planned else 0.0, width=40,
                          pulse=not p.planned and not p.finished)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(bar, Text(f"{it}/{p.planned or '?'}", style="bold"),
                     Text(f"SR {pct(p.sr)}", style="cyan"), Text(f"peak {pct(p.peak_sr)}"),
                     Text(f"ETA {duration(p.eta_s())}", style="magenta"))
        parts: list[Any] = [self._head(), grid, Text(self.stats_line(), style="dim")]
        srs = [r.get("sr") for r in p.rows if isinstance(r.get("sr"), (int, float))]
        if srs:
            parts.append(Text("SR  " + sparkline(srs, 60), style="cyan"))
        parts += [Text(self.note_line(n), style="green") for n in p.notes]
        return Group(*parts)


def summary_table(run_dir: Path, status: dict, rows: list[dict]) -> Table:
    """The end-of-run summary (also the header of `playground show`)."""
    prog = RunProgress(run_dir)
    for r in rows:
        prog.add_row(r)
    prog.set_status(status)
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    conf = read_config(run_dir)
    last, pk = prog.last, prog.peak
    st = status.get("status", "unknown")
    t.add_row("run", run_dir.name)
    t.add_row("status", Text(status.get("stalled_since") if st == "running" and status.get("stalled_since")
                             else st, style={"done": "green", "failed": "red", "stopped": "yellow"}.get(st, ""))
              + Text(f"  (exit code {status.get('exit_code')})" if status.get("exit_code") is not None else ""))
    if conf.get("kind") == "pretrain":
        t.add_row("job", f"pretraining the checkpoint ladder of {conf.get('env', '?')}, seed {conf.get('seed', '?')}")
    else:
        t.add_row("config", f"{conf.get('preset') or '-'}: {conf.get('regime', '?')} {conf.get('estimator', '?')} + "
                            f"{conf.get('update', '?')}, env {conf.get('env', '?')}, seed {conf.get('seed', '?')}, "
                            f"exp_name {conf.get('exp_name') or '-'}")
    t.add_row("iterations", f"{num(prog.iteration)}" + (f" of {prog.planned}" if prog.planned else ""))
    t.add_row("env steps", num(prog.env_steps))
    t.add_row("wall time", duration(prog.wall_s))
    t.add_row("final SR", pct(prog.sr) + (f"  (at end of episode {pct(last.get('sr_at_end'))})"
                                          if isinstance(last.get("sr_at_end"), (int, float)) else ""))
    t.add_row("peak SR", pct(pk.sr) + (f"  at iteration {pk.iteration}, {num(pk.env_steps)} env steps"
                                       if pk.sr is not None else ""))
    t.add_row("started", f"{status.get('started') or '-'}  ended {status.get('ended') or '-'}")
    t.add_row("directory", str(run_dir))
    if status.get("stall") and st == "running":  # engine.launcher.stall: no progress
        t.add_row("stalled", Text(str(status["stall"]), style="red"))
    if status.get("rebuilt"):  # an unreadable status.json rebuilt from the other records
        t.add_row("note", Text(str(status["rebuilt"]), style="yellow"))
    if status.get("error"):
        t.add_row("error", Text(str(status["error"]), style="red"))
    return t
