"""`RunView`: what the run doctor reads of one run (config, status, metrics rows, when they were
last written), and the series the rules look at. No torch, no UI."""
from __future__ import annotations

import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.records import read_metrics, read_status

from .stall import last_progress


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


@dataclass
class RunView:
    """A run as the doctor sees it. `rows` are the metrics rows in file order (the initial
    evaluation included); `last_write` is the newest write to its records (engine.doctor.stall)."""
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    status: dict[str, Any] = field(default_factory=dict)
    last_write: float | None = None
    now: float = field(default_factory=time.time)

    @classmethod
    def read(cls, run_dir: str | Path, now: float | None = None) -> "RunView":
        d = Path(run_dir)
        try:
            with open(d / "config.toml", "rb") as f:
                config = tomllib.load(f)
        except (OSError, ValueError):
            config = {}
        return cls(config, read_metrics(d), read_status(d) or {}, last_progress(d), time.time() if now is None else now)

    def cfg(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    @property
    def update(self) -> str:
        return str(self.cfg("update", ""))

    @property
    def updates(self) -> list[dict]:
        """The rows of update iterations (not the initial evaluation)."""
        return [r for r in self.rows if r.get("phase") is None and isinstance(r.get("iteration"), int)
                and r["iteration"] > 0]

    @property
    def planned(self) -> int | None:
        try:
            if self.cfg("regime") == "online":
                return max(1, int(self.cfg("total_timesteps")) // (int(self.cfg("num_envs")) * int(self.cfg("num_steps"))))
            return int(self.cfg("num_iterations"))
        except (TypeError, ValueError):
            return None

    def series(self, key: str, rows: list[dict] | None = None) -> list[tuple[int, float]]:
        """(iteration, value) of the update rows where `key` is a finite number."""
        out = []
        for r in self.updates if rows is None else rows:
            v = _num(r.get(key))
            if v is not None:
                out.append((int(r["iteration"]), v))
        return out

    def evaluations(self) -> list[dict]:
        """The rows whose SR comes from an evaluation made at that iteration (the initial one, every
        `eval_every`-th and the last): other rows repeat the latest evaluation."""
        every = max(1, int(self.cfg("eval_every", 1) or 1))
        planned = self.planned
        out = []
        for r in self.rows:
            it = r.get("iteration")
            if _num(r.get("sr")) is None or not isinstance(it, int):
                continue
            if r.get("phase") == "initial" or it % every == 0 or it == planned:
                out.append(r)
        return out
