"""The run doctor: every rule over one run's records -> `Diagnosis` list (worst first)."""
from __future__ import annotations

from pathlib import Path

from . import rules_health, rules_signals, rules_sr, rules_updates
from .diagnosis import Diagnosis, worst_first
from .view import RunView

RULES = rules_health.RULES + rules_updates.RULES + rules_signals.RULES + rules_sr.RULES
RULE_IDS = ("DOC01", "DOC02", "DOC03", "DOC04", "DOC05", "DOC06", "DOC07", "DOC08", "DOC09", "DOC10", "DOC11")


def diagnose(view: RunView) -> list[Diagnosis]:
    """The findings of every rule for this run (a pretraining job gets none: its rows are not an update's)."""
    if view.cfg("kind") == "pretrain":
        return []
    out: list[Diagnosis] = []
    for rule in RULES:
        out += rule(view)
    return worst_first(out)


def diagnose_records(config: dict, rows: list[dict], status: dict | None = None, *,
                     last_write: float | None = None, now: float | None = None) -> list[Diagnosis]:
    """Diagnose records already in memory (the TUI's followed runs)."""
    view = RunView(dict(config or {}), list(rows), dict(status or {}), last_write)
    if now is not None:
        view.now = now
    return diagnose(view)


def diagnose_run(run_dir: str | Path, now: float | None = None) -> list[Diagnosis]:
    """Read `run_dir` (config.toml, status.json, metrics.jsonl) and diagnose it."""
    return diagnose(RunView.read(run_dir, now=now))
