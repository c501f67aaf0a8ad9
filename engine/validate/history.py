"""HIST01: earlier runs of the same kind (same env, regime, estimator, update and preset when
known) that peaked far below the SR the seed reached with this config.

Reads `runs_dir/*/config.toml`, `metrics.jsonl` ('sr' per line) and `status.json` with the
standard library only, tolerating junk: unreadable files, partial last lines, non-numeric values.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from engine.config.schema import FIELDS, RunConfig
from engine.sr import peak_sr

from .finding import Finding, pct

FAR_BELOW = 0.5      # a peak under this fraction of the expected SR is "far below"
MIN_ITERATIONS = 3   # runs shorter than this say nothing yet
MAX_NAMED = 5


@dataclass
class PastRun:
    run_id: str
    peak: float
    iterations: int
    status: str | None


def _read_config(d: Path) -> dict | None:
    try:
        with open(d / "config.toml", "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _read_sr(d: Path) -> tuple[float | None, int]:
    """(peak SR, iterations run) from metrics.jsonl, skipping lines that do not parse."""
    rows: list[dict] = []
    last_iter = 0
    try:
        with open(d / "metrics.jsonl", "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(row, dict):
                    continue
                rows.append(row)
                it = row.get("iteration")
                if isinstance(it, int) and not isinstance(it, bool):
                    last_iter = max(last_iter, it)
    except OSError:
        return None, 0
    return peak_sr(rows), max(len(rows), last_iter)


def _read_status(d: Path) -> str | None:
    try:
        s = json.loads((d / "status.json").read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    st = s.get("status") if isinstance(s, dict) else None
    return st if isinstance(st, str) else None


def similar_runs(cfg: RunConfig, runs_dir: Path) -> list[PastRun]:
    """Runs under runs_dir of the same env / regime / estimator / update (/ preset) with >= 3 iterations."""
    out: list[PastRun] = []
    try:
        dirs = sorted(p for p in Path(runs_dir).iterdir() if p.is_dir())
    except OSError:
        return out
    for d in dirs:
        c = _read_config(d)
        if c is None:
            continue
        if any(c.get(k, FIELDS[k].default) != getattr(cfg, k)
               for k in ("regime", "estimator", "update")):
            continue
        if c.get("env", FIELDS["env"].default) != cfg.env:
            continue
        theirs = c.get("preset")
        if cfg.preset and isinstance(theirs, str) and theirs and theirs != cfg.preset:
            continue
        peak, iters = _read_sr(d)
        if peak is None or iters < MIN_ITERATIONS:
            continue
        out.append(PastRun(d.name, peak, iters, _read_status(d)))
    return out


def hist01_far_below(cfg: RunConfig, runs_dir: Path | None, expected_sr: float | None) -> list[Finding]:
    if runs_dir is None or expected_sr is None or expected_sr <= 0:
        return []
    bad = [r for r in similar_runs(cfg, Path(runs_dir)) if r.peak < FAR_BELOW * expected_sr]
    if not bad:
        return []
    named = ", ".join(f"{r.run_id} (peak {pct(r.peak)} in {r.iterations} iterations"
                      + (f", {r.status}" if r.status else "") + ")" for r in bad[:MAX_NAMED])
    more = f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
    kind = f"{cfg.regime} {cfg.estimator} {cfg.update}" + (f" (preset {cfg.preset})" if cfg.preset else "")
    return [Finding("HIST01", "warning",
                    f"earlier {kind} runs peaked far below the seed's {pct(expected_sr)}",
                    f"{len(bad)} earlier run(s) of this kind on {cfg.env} peaked under half of the seed's "
                    f"{pct(expected_sr)}: {named}{more}. Look at what differed (checkpoint ladder: "
                    "`playground checkpoints`; their findings.json and engine.log) before spending another run.",
                    {})]
