"""The state of a run (or a pretraining job) as a front door shows it: status, iteration of the
planned number, env steps, SR now, the peak SR, elapsed time and ETA.

- `peak(rows)` / `peak_sr(rows)` (defined in `engine.sr`, re-exported here): THE definition of a
  run's peak SR, used by the run listing, sweeps, reproduce, the experiment log, the validator's
  history rule, the CLI's live display and the TUI.
- `metric_keys(rows)` / `metric_series(rows, key)`: any logged metric as a curve (env steps, value).
- `RunProgress`: fed with launcher events (`engine.launcher.follow.Event`) or metrics rows and
  status dicts; its properties are what a progress bar, a table row or a summary needs. No
  drawing here: `engine.cli.live` draws it with rich, the TUI with Textual.

Rows of a pretraining job (`engine.launcher.pretrain_job`) are read the same way: their PPO
rows carry `iteration`, `env_steps`, `wall_s` and `sr` (the deterministic SR); rows with a
`phase` other than "ppo" (the ladder's roles as they are chosen) are kept in `notes`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

from engine.records import TERMINAL, read_metrics, read_status
from engine.run_files import planned_iterations, read_config
from engine.sr import Peak, _int, _num, is_iteration_row, peak, peak_sr, sr_series, sr_value  # noqa: F401 (re-exported)


# metrics-row keys that are coordinates or bookkeeping, not a curve
NOT_METRICS = frozenset({"iteration", "env_steps", "iterations", "phase", "threads", "grad_steps", "eval_episodes"})


def metric_keys(rows: Iterable[dict]) -> list[str]:
    """The numeric keys logged in any iteration row (what a curve can show), `sr` first, then sorted."""
    keys = {k for r in rows if is_iteration_row(r) for k, v in r.items()
            if k not in NOT_METRICS and _num(v) is not None and not isinstance(v, bool)}
    return (["sr"] if "sr" in keys else []) + sorted(keys - {"sr"})


def metric_series(rows: Iterable[dict], key: str) -> tuple[list[float], list[float]]:
    """(env_steps, value) of the iteration rows that carry `key` as a number; `sr` is `sr_series`."""
    if key == "sr":
        return sr_series(rows)
    xs, ys = [], []
    for r in rows:
        x, y = _num(r.get("env_steps")), r.get(key)
        if x is not None and is_iteration_row(r) and not isinstance(y, bool) and _num(y) is not None:
            xs.append(x)
            ys.append(float(y))
    return xs, ys


def eta_seconds(rows: list[dict], planned: int | None) -> float | None:
    """Seconds left until iteration `planned`, from the pace of the iterations seen so far
    (their `wall_s`); 0 once reached; None while it cannot be told."""
    timed = [(r["iteration"], r["wall_s"]) for r in rows
             if _int(r.get("iteration")) is not None and _num(r.get("wall_s")) is not None]
    if not timed or not planned:
        return None
    it = timed[-1][0]
    if it >= planned:
        return 0.0
    if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
        per = (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])
    elif it > 0:
        per = timed[-1][1] / it
    else:
        return None
    return max(0.0, per * (planned - it))


class RunProgress:
    """What is known about one run's progress. Feed it with `add(event)` / `add_row(row)` /
    `set_status(status)`; read the properties. Cheap: each row is looked at once."""

    def __init__(self, run_dir: str | Path | None = None, *, conf: dict | None = None, planned: int | None = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if conf is None and self.run_dir is not None:
            conf = read_config(self.run_dir)
        self.conf: dict = conf or {}
        if planned is None:
            planned = planned_iterations(self.conf)
        self.planned: int | None = planned
        self._planned_from_rows = planned is None   # a pretraining job says it in its rows
        self.rows: list[dict] = []          # iteration rows, in order
        self.notes: list[dict] = []         # other rows (a pretraining job's ladder roles)
        self.status: dict = {}
        self.peak: Peak = Peak()
        self.started_at = time.monotonic()

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunProgress":
        """A RunProgress of everything the run directory holds now (status and every row)."""
        p = cls(run_dir)
        for r in read_metrics(run_dir):
            p.add_row(r)
        p.set_status(read_status(run_dir) or {})
        return p

    # --- feeding ---------------------------------------------------------------------------
    def add(self, event: Any) -> None:
        """One launcher event (`kind` "metrics" or "status", `data` the row or status dict)."""
        if event.kind == "metrics":
            self.add_row(event.data)
        elif event.kind == "status":
            self.set_status(event.data)

    def add_all(self, events: Iterable[Any]) -> "RunProgress":
        for e in events:
            self.add(e)
        return self

    def add_row(self, row: dict) -> None:
        if not is_iteration_row(row):
            self.notes.append(row)
            return
        self.rows.append(row)
        if self._planned_from_rows and _int(row.get("iterations")):
            self.planned = row["iterations"]
        sr = sr_value(row)
        if sr is not None and (self.peak.sr is None or sr > self.peak.sr):
            self.peak = Peak(sr, _int(row.get("iteration")), _int(row.get("env_steps")), row)

    def set_status(self, status: dict) -> None:
        self.status = dict(status or {})

    # --- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """queued | running | done | failed | stopped ("starting" before any status is read)."""
        return str(self.status.get("status") or "starting")

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    @property
    def iteration(self) -> int | None:
        return _int(self.last.get("iteration"))

    @property
    def env_steps(self) -> int | None:
        return _int(self.last.get("env_steps"))

    @property
    def wall_s(self) -> float | None:
        return _num(self.last.get("wall_s"))

    @property
    def sr(self) -> float | None:
        """SR now: the latest evaluation's."""
        for r in reversed(self.rows):
            sr = sr_value(r)
            if sr is not None:
                return sr
        return None

    @property
    def peak_sr(self) -> float | None:
        return self.peak.sr

    @property
    def fraction(self) -> float | None:
        """Share of the planned iterations done (0..1), None when the plan is unknown."""
        if not self.planned:
            return None
        return min(1.0, (self.iteration or 0) / self.planned)

    def eta_s(self) -> float | None:
        return eta_seconds(self.rows, self.planned)

    def series(self) -> tuple[list[float], list[float]]:
        """(env_steps, sr): the points of the SR curve."""
        return sr_series(self.rows)

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    def to_dict(self) -> dict[str, Any]:
        """A table row: id, status, iteration, planned, env steps, SR now, peak SR, ETA."""
        return {"id": self.run_dir.name if self.run_dir else None, "status": self.state, "iteration": self.iteration,
                "planned_iterations": self.planned, "env_steps": self.env_steps, "sr": self.sr,
                "peak_sr": self.peak.sr, "peak_env_steps": self.peak.env_steps, "wall_s": self.wall_s,
                "eta_s": self.eta_s(), "error": self.error}
