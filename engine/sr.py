"""SR of metrics rows: the one definition of a run's peak SR, at the bottom of the engine so
that every layer (records, the validator, the launcher, the views) uses the same one.

- `sr_value(row)`: the row's deterministic SR (a finite number, not a bool), else None.
- `peak(rows)` -> `Peak(sr, iteration, env_steps, row)`: the highest SR of any row and the
  first row that reached it; `peak_sr(rows)` is its SR.
- `sr_series(rows)`: (env_steps, sr) of the rows that carry both: the points of an SR curve.
- `is_iteration_row(row)`: a training-iteration row (not a note such as a pretraining job's
  chosen ladder role, `phase = "ladder"`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def sr_value(row: dict) -> float | None:
    """The row's deterministic SR (0..1), or None when it carries none."""
    return _num(row.get("sr"))


NOTE_PHASES = ("ladder",)


def is_iteration_row(row: dict) -> bool:
    """An iteration row (a run's, its initial evaluation `phase = "initial"` included, or a
    pretraining job's PPO iteration); not a note such as a job's chosen ladder role."""
    return row.get("phase") not in NOTE_PHASES and _int(row.get("iteration")) is not None


@dataclass(frozen=True)
class Peak:
    """The best SR of a run and where it was reached (None everywhere when no row has an SR)."""
    sr: float | None = None
    iteration: int | None = None
    env_steps: int | None = None
    row: dict = field(default_factory=dict, compare=False, repr=False)


def peak(rows: Iterable[dict]) -> Peak:
    """The highest `sr` over `rows` and the first row that reached it."""
    best: float | None = None
    at: dict = {}
    for r in rows:
        sr = sr_value(r)
        if sr is not None and (best is None or sr > best):
            best, at = sr, r
    return Peak(best, _int(at.get("iteration")), _int(at.get("env_steps")), at) if at else Peak()


def peak_sr(rows: Iterable[dict]) -> float | None:
    """The run's peak SR (see `peak`)."""
    return peak(rows).sr


def sr_series(rows: Iterable[dict]) -> tuple[list[float], list[float]]:
    """(env_steps, sr) of the rows that carry both: the points of an SR curve."""
    xs, ys = [], []
    for r in rows:
        x, y = _num(r.get("env_steps")), sr_value(r)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys
