"""What a run directory's files say, read without side effects: its config.toml (`read_config`),
its findings.json (`read_findings`), the iterations its config plans (`planned_iterations`), and
whether a directory is a run's (`is_run_dir`). A bottom-floor module (it imports nothing of the
engine): the launcher's listing, progress and reconcile read runs through it, and so do the
floors below the launcher (engine.figures, engine.analysis), which must not import the launcher.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.toml as a dict ({} when missing or unreadable)."""
    try:
        with open(Path(run_dir) / "config.toml", "rb") as f:
            return tomllib.load(f)
    except (OSError, ValueError):  # ValueError: bad TOML or bytes that are not UTF-8
        return {}


def read_findings(run_dir: str | Path) -> list[dict]:
    try:
        data = json.loads((Path(run_dir) / "findings.json").read_text())
        return data if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def planned_iterations(conf: dict[str, Any]) -> int | None:
    """Iterations the run's config asks for (online: total_timesteps / batch; offline: num_iterations)."""
    try:
        if conf.get("regime") == "offline":
            return int(conf["num_iterations"])
        return max(1, int(conf["total_timesteps"]) // (int(conf["num_envs"]) * int(conf["num_steps"])))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def is_run_dir(path: Path) -> bool:
    try:
        return path.is_dir() and ((path / "status.json").is_file() or (path / "config.toml").is_file())
    except OSError:  # a name too long, a loop of links
        return False
