"""Overrides: the command line's `--key value` tokens parsed into `{key: raw string}`, and
overrides (those strings, or typed values from code such as the TUI) turned into typed config
values against the schema; every problem collected."""
from __future__ import annotations

from typing import Any, Mapping

from .presets import META_KEYS
from .problems import ConfigError, Problem, did_you_mean
from .schema import FIELDS, field_type
from .values import Given, typed_value


def parse_overrides(args: list[str]) -> dict[str, str]:
    """Command-line overrides -> {key: raw string}.

    Accepts `--key value`, `--key=value`, dashes for underscores (`--mc-samples 8`), and for
    bool keys a bare `--key` (true) or `--no-key` (false). A flag without a value, a stray
    positional and unknown keys are problems; all of them are raised together.
    """
    out: dict[str, str] = {}
    problems: list[Problem] = []
    args = list(args)
    i = 0
    while i < len(args):
        i, key, value, problem = _next_override(args, i)
        if problem is not None:
            problems.append(problem)
        elif key is not None:
            out[key] = value
    if problems:
        raise ConfigError(problems)
    return out


def _next_override(args: list[str], i: int) -> tuple[int, str | None, str | None, Problem | None]:
    """The override that starts at args[i]: (where the next one starts, key, raw value, None), or
    (where the next one starts, None, None, the problem)."""
    tok = args[i]
    if not tok.startswith("--") or tok == "--":
        return i + 1, None, None, Problem(f"unexpected argument {tok!r}: overrides are `--key value` pairs "
                                          "(e.g. --gamma 0.9)")
    body, eq, value = tok[2:].partition("=")
    value = value if eq else None
    key = body.replace("-", "_")
    negated = key not in FIELDS and body.startswith("no-") and body[3:].replace("-", "_") in FIELDS
    if negated:
        key = body[3:].replace("-", "_")
    # an unknown flag's value is skipped too, so that it is not reported as a stray positional
    skip = i + 1 + (value is None and i + 1 < len(args) and not args[i + 1].startswith("--"))
    if key in META_KEYS:
        return skip, None, None, Problem(f"--{body} is preset metadata, not a config key: set it in the preset file",
                                         key=key)
    if key not in FIELDS:
        flags = [f"--{k}" for k in FIELDS]
        return skip, None, None, Problem(f"unknown option --{body}{did_you_mean('--' + key, flags, quote='')}", key=key)
    is_bool = field_type(key) is bool
    if negated:
        if not is_bool:
            return i + 1, None, None, Problem(f"--no-{key} only works for true/false keys; give --{key} VALUE", key=key)
        if value is not None:
            return i + 1, None, None, Problem(f"--no-{key} takes no value", key=key)
        return i + 1, key, "false", None
    if value is not None:
        return i + 1, key, value, None
    nxt = args[i + 1] if i + 1 < len(args) else None
    if nxt is not None and not (nxt.startswith("--") and len(nxt) > 2):
        return i + 2, key, nxt, None
    if is_bool:
        return i + 1, key, "true", None
    return i + 1, None, None, Problem(f"--{body} needs a value: --{key} VALUE", key=key)


def override_values(overrides: Mapping[str, Any], problems: list[Problem]) -> dict[str, Given]:
    """The typed config values `overrides` set (a string is read as command-line text); every
    unknown key, metadata key or unusable value added to `problems`."""
    out: dict[str, Given] = {}
    for key, value in overrides.items():
        if key in META_KEYS:
            problems.append(Problem("is preset metadata, not a config key: it cannot be overridden", key=key))
            continue
        if key not in FIELDS:
            problems.append(Problem("unknown key" + (did_you_mean(key, list(FIELDS)) or
                                                    "; config keys are the seed's flag names"), key=key))
            continue
        typed, msg = typed_value(key, value, from_text=isinstance(value, str))
        if msg:
            problems.append(Problem(msg, key=key))
            continue
        out[key] = Given(typed)
    return out
