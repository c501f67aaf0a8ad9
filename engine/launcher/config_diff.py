"""A run's resolved config as written (`config_text`) and the keys in which two runs' configs
differ (`diff_runs` -> `ConfigDiff`): what `playground show RUN --config`, `playground diff` and
the TUI's config view and diff show. Reads config.toml only; a run without a readable one is a
`RecordError` (one line)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.records import RecordError

ABSENT = None  # a key one run's config does not have (JSON null; the fronts show "(absent)")


def config_text(run_dir: str | Path) -> str:
    """The run's config.toml as the launcher wrote it (comments included)."""
    path = Path(run_dir) / "config.toml"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise RecordError(f"{Path(run_dir).name} has no config.toml: it is not a run the launcher prepared") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(f"cannot read {path} ({getattr(e, 'strerror', None) or e})") from None


def parsed_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.toml as a dict (RecordError when missing or not valid TOML)."""
    try:
        return tomllib.loads(config_text(run_dir))
    except tomllib.TOMLDecodeError as e:
        raise RecordError(f"{Path(run_dir) / 'config.toml'} is not valid TOML ({e})") from None


@dataclass
class ConfigDiff:
    """Two runs' configs: `rows` (key, value in A, value in B) for every key that differs, in
    A's key order then B's extra keys; `same`: how many keys are equal."""
    a: str
    b: str
    rows: list[tuple[str, Any, Any]] = field(default_factory=list)
    same: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "same": self.same,
                "differ": [{"key": k, "a": va, "b": vb} for k, va, vb in self.rows]}


def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return x is y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return float(x) == float(y)  # 100 and 100.0 are one value
    return x == y


def diff_configs(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[tuple[str, Any, Any]], int]:
    """(rows of the keys that differ, count of equal keys); a key missing on one side is ABSENT there."""
    rows, same = [], 0
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(key, ABSENT), b.get(key, ABSENT)
        if key in a and key in b and _equal(va, vb):
            same += 1
        else:
            rows.append((key, va, vb))
    return rows, same


def diff_runs(run_a: str | Path, run_b: str | Path) -> ConfigDiff:
    """The keys in which two runs' resolved configs differ (seed and exp_name included)."""
    rows, same = diff_configs(parsed_config(run_a), parsed_config(run_b))
    return ConfigDiff(Path(run_a).name, Path(run_b).name, rows, same)
