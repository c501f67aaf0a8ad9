"""Reading and writing flat TOML tables (config.toml of a run, preset files).

Reading is `tomllib` (stdlib); writing covers what a flat config holds: strings, ints,
floats, bools, and lists of those.
"""
from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        # a JSON string is a valid TOML basic string once DEL and C1 controls are escaped too
        # (JSON allows them raw, TOML does not)
        return "".join(f"\\u{ord(c):04X}" if 0x7F <= ord(c) <= 0x9F else c for c in json.dumps(v, ensure_ascii=False))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if v is None:
        raise TypeError("TOML has no null: leave the key out or use 'none'")
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_flat(table: Mapping[str, Any], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    lines += [f"{k} = {_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_flat(path: str | Path, table: Mapping[str, Any], header: str = "") -> None:
    Path(path).write_text(dumps_flat(table, header), encoding="utf-8")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; raises tomllib.TOMLDecodeError (message carries line and column)."""
    with open(path, "rb") as f:
        return tomllib.load(f)
