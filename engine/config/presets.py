"""Presets: finding one (a name in the presets folder or a path to a .toml file, with "did you
mean"), reading it (TOML syntax problems located by line), listing them, and turning a preset's
keys into typed config values.

A preset is a flat TOML table of config keys (the seed's flag names, see `schema.py`) plus
three optional metadata keys that are not config keys: `description` (str), `expected_sr`
(float: the seed's peak SR for this config) and `seed_command` (str: the seed command it
reproduces). The folder is `$PLAYGROUND_PRESETS_DIR`, else the repository's presets/.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from .problems import ConfigError, Problem, did_you_mean, display_path, num
from .schema import FIELDS, RunConfig
from .values import Given, type_name, typed_value

META_KEYS: dict[str, type] = {"description": str, "expected_sr": float, "seed_command": str}


@dataclass
class PresetInfo:
    name: str
    path: Path
    description: str
    regime: str
    estimator: str
    update: str
    expected_sr: float | None
    seed_command: str | None


def presets_dir() -> Path:
    """$PLAYGROUND_PRESETS_DIR, else the repository's presets/ folder."""
    env = settings.get("PLAYGROUND_PRESETS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "presets"


def _preset_names() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def find_preset(name_or_path: str) -> Path:
    """A preset name from presets/ or a path to a .toml file; ConfigError (with a suggestion) otherwise."""
    s = str(name_or_path or "").strip()
    if not s:
        raise ConfigError(Problem(f"no preset given: name one of {', '.join(_preset_names()) or '(none)'} "
                                  "or a path to a .toml file"))
    looks_like_path = s.endswith(".toml") or "/" in s or os.sep in s or s.startswith(".")
    if not looks_like_path:
        p = presets_dir() / f"{s}.toml"
        if p.is_file():
            return p
        names = _preset_names()
        hint = did_you_mean(s, names)
        if not hint and Path(s).is_file():  # a file in the working directory without .toml suffix
            return Path(s)
        avail = f" (presets: {', '.join(names)})" if names else f" (no presets found in {presets_dir()})"
        raise ConfigError(Problem(f"unknown preset '{s}'{hint or avail} (or give a path to a .toml file)"))
    p = Path(s).expanduser()
    if p.is_dir():
        raise ConfigError(Problem(f"preset {s} is a directory, not a .toml file", file=s))
    if not p.is_file():
        stem = p.name[:-5] if p.name.endswith(".toml") else p.name
        hint = did_you_mean(stem, _preset_names())
        raise ConfigError(Problem(f"preset file {s} does not exist"
                                  + (f"{hint[:-1]} (a preset name)?" if hint else "")))
    return p


def preset_label(preset: str, path: Path) -> str:
    """The name a config records as its preset: the stem for a file in the presets folder, else as given."""
    try:
        if path.resolve().parent == presets_dir().resolve():
            return path.stem
    except OSError:
        pass
    return preset


def _key_lines(text: str) -> dict[str, int]:
    """First line where each top-level key (or table) is written: for problem locations."""
    out: dict[str, int] = {}
    rx_key = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_\-]+))\s*(?:\.|=)""")
    rx_table = re.compile(r"""^\s*\[+\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_\-]+))""")
    in_table = False
    for i, line in enumerate(text.splitlines(), 1):
        m = rx_table.match(line)
        if m:
            in_table = True
            out.setdefault(next(g for g in m.groups() if g), i)
            continue
        if in_table:
            continue
        m = rx_key.match(line)
        if m:
            out.setdefault(next(g for g in m.groups() if g), i)
    return out


def read_preset_file(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """(the TOML table, the line of each key), or None with the reason added to `problems`."""
    shown = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        problems.append(Problem(f"cannot read the preset ({e.strerror or e})", file=shown))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem("not a TOML file (not UTF-8 text): a preset is a flat table of `key = value` lines",
                                file=shown))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        line = None
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
        if m:
            line = int(m.group(1))
            msg = msg[:m.start()] + f" at column {m.group(2)}"
        elif "(at end of document)" in msg:
            line = max(1, len(text.splitlines()))
            msg = msg.replace(" (at end of document)", " at the end of the file")
        problems.append(Problem(f"not valid TOML: {msg}; a preset is a flat table of `key = value` lines "
                                "(strings in quotes)", file=shown, line=line))
        return None
    return data, _key_lines(text)


def _meta_key_problem(key: str, value: Any) -> str | None:
    if key == "expected_sr":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number in [0, 1] (the seed's peak SR), got {type_name(value)} {value!r}"
        if not 0.0 <= float(value) <= 1.0:
            return f"{num(value)} is out of range [0, 1] (a success rate: 0.991, not 99.1)"
        return None
    if not isinstance(value, str):
        return f"expected a string, got {type_name(value)} {value!r}"
    return None


def _key_problem(key: str, value: Any) -> tuple[Any, str | None]:
    """(typed value, None) for a config key of a preset, or (None, what is wrong with the entry)."""
    if isinstance(value, dict):
        return None, (f"is a table, but a preset is one flat table of config keys: "
                      f"write the keys at the top level (no [{key}] or {key}.x)")
    if key in META_KEYS:
        return None, _meta_key_problem(key, value)
    if key not in FIELDS:
        return None, "unknown key" + (did_you_mean(key, list(FIELDS) + list(META_KEYS))
                                      or "; config keys are the seed's flag names (mc_samples, awr_beta, gamma, ...)")
    return typed_value(key, value, from_text=False)


def preset_values(path: Path, problems: list[Problem]) -> dict[str, Given]:
    """The typed config values a preset file sets (metadata keys checked, not returned); every
    problem, located by file and line, added to `problems`."""
    read = read_preset_file(path, problems)
    if read is None:
        return {}
    data, lines = read
    shown = display_path(path)
    out: dict[str, Given] = {}
    for key, value in data.items():
        typed, msg = _key_problem(key, value)
        if msg:
            problems.append(Problem(msg, file=shown, line=lines.get(key), key=key))
        elif key in FIELDS:  # metadata keys are checked, not config values
            out[key] = Given(typed, shown, lines.get(key))
    return out


def list_presets() -> list[PresetInfo]:
    """Every preset in presets_dir(), sorted by name; unreadable ones say so in their description."""
    d = presets_dir()
    if not d.is_dir():
        return []
    return [_preset_info(path) for path in sorted(d.glob("*.toml"))]


def _preset_info(path: Path) -> PresetInfo:
    defaults = RunConfig()
    problems: list[Problem] = []
    read = read_preset_file(path, problems)
    data = read[0] if read else {}

    def s(key: str, default: str) -> str:
        v = data.get(key, default)
        return v if isinstance(v, str) else str(v)

    desc = s("description", "")
    if problems:
        desc = f"(cannot be read: {problems[0]})"
    es = data.get("expected_sr")
    return PresetInfo(
        name=path.stem, path=path, description=desc.strip().splitlines()[0] if desc.strip() else "",
        regime=s("regime", defaults.regime), estimator=s("estimator", defaults.estimator),
        update=s("update", defaults.update),
        expected_sr=float(es) if isinstance(es, (int, float)) and not isinstance(es, bool) else None,
        seed_command=data.get("seed_command") if isinstance(data.get("seed_command"), str) else None)


def preset_metadata(name_or_path: str) -> dict[str, Any]:
    """The metadata keys (description, expected_sr, seed_command) of a preset; {} if unreadable."""
    try:
        path = find_preset(name_or_path)
    except ConfigError:
        return {}
    read = read_preset_file(path, [])
    if not read:
        return {}
    return {k: v for k, v in read[0].items() if k in META_KEYS}
