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
    flags = [f"--{k}" for k in FIELDS]
    i = 0
    args = list(args)
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--") or tok == "--":
            problems.append(Problem(f"unexpected argument {tok!r}: overrides are `--key value` pairs "
                                    "(e.g. --gamma 0.9)"))
            i += 1
            continue
        body = tok[2:]
        value: str | None = None
        if "=" in body:
            body, value = body.split("=", 1)
        negated = False
        key = body.replace("-", "_")
        if key not in FIELDS and body.startswith("no-") and body[3:].replace("-", "_") in FIELDS:
            negated, key = True, body[3:].replace("-", "_")
        if key in META_KEYS:
            problems.append(Problem(f"--{body} is preset metadata, not a config key: set it in the preset file",
                                    key=key))
            i += 1 + (value is None and i + 1 < len(args) and not args[i + 1].startswith("--"))
            continue
        if key not in FIELDS:
            problems.append(Problem(f"unknown option --{body}{did_you_mean('--' + key, flags, quote='')}",
                                    key=key))
            # skip its value too, so that it is not reported as a stray positional
            i += 1 + (value is None and i + 1 < len(args) and not args[i + 1].startswith("--"))
            continue
        is_bool = field_type(key) is bool
        if negated:
            if not is_bool:
                problems.append(Problem(f"--no-{key} only works for true/false keys; give --{key} VALUE", key=key))
            elif value is not None:
                problems.append(Problem(f"--no-{key} takes no value", key=key))
            else:
                out[key] = "false"
            i += 1
            continue
        if value is None:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if nxt is None or (nxt.startswith("--") and len(nxt) > 2):
                if is_bool:
                    value = "true"
                else:
                    problems.append(Problem(f"--{body} needs a value: --{key} VALUE", key=key))
                    i += 1
                    continue
                i += 1
            else:
                value = nxt
                i += 2
        else:
            i += 1
        out[key] = value
    if problems:
        raise ConfigError(problems)
    return out


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
