"""The messages the run follower posts to the app (from its own thread, never blocking the UI
thread): a run found under the runs directory, new metrics rows, a status change, new log
lines of the run being tailed, a run whose directory was deleted."""
from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class RunFound(Message):
    """A run directory the follower has started to follow (history is posted next)."""
    run_id: str
    path: str
    config: dict = field(default_factory=dict)


@dataclass
class MetricsRows(Message):
    """Metrics rows of one run since the last poll, in order (one message per run and poll)."""
    run_id: str
    rows: list[dict]


@dataclass
class StatusChanged(Message):
    """A run's status.json changed (the full status dict)."""
    run_id: str
    status: dict


@dataclass
class LogLines(Message):
    """New complete lines of the tailed run's engine.log (`reset`: the tail restarted)."""
    run_id: str
    lines: list[str]
    reset: bool = False


@dataclass
class RunRemoved(Message):
    """The run's directory disappeared."""
    run_id: str
    reason: str = ""
