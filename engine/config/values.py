"""One config value against the schema: coercing it to the key's type (from a command-line string
or a typed TOML / code value) and checking it against the field's metadata (`choices`, `min`,
`max`, printable UTF-8 text). Every check returns a one-line problem message or None; where the
value came from (file, line) travels with it as `Given`."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .problems import did_you_mean, num
from .schema import FIELDS, field_type

BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
              "false": False, "0": False, "no": False, "off": False}
_TYPE_WORD = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class Given(NamedTuple):
    """A typed config value and where it was set (file and line; None for overrides and code)."""
    value: Any
    file: str | None = None
    line: int | None = None


def type_name(v: Any) -> str:
    return {bool: "bool", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def convert(key: str, value: Any, from_text: bool) -> tuple[Any, str | None]:
    """(typed value, None) or (None, problem message). `from_text`: value came from a command line."""
    t = field_type(key)
    if isinstance(value, str) and t is not str:
        return _from_string(t, value, from_text)
    return _from_typed(t, value, from_text)


def _from_string(t: type, value: str, from_text: bool) -> tuple[Any, str | None]:
    """A string where a bool or a number belongs: parsed when it came from a command line, a
    problem (with the fix: no quotes) when it came from TOML."""
    s = value.strip()
    if t is bool:
        b = BOOL_WORDS.get(s.lower())
        if not from_text:  # a TOML string where a TOML bool belongs
            return None, (f"expected true or false, got the string {value!r}"
                          + (f"; write {str(b).lower()} without quotes" if b is not None else ""))
        if b is None:
            return None, f"{value!r} is not true/false (use true, false, 1, 0, yes or no)"
        return b, None
    if not from_text:  # a TOML string where a number belongs
        return None, (f"expected {_TYPE_WORD[t]}, got the string {value!r}"
                      + ("; write it without quotes" if _parses_as(t, s) else ""))
    if t is int:
        try:
            return int(s), None
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                return None, f"{value!r} is not an integer"
            if math.isfinite(f) and f.is_integer():
                return int(f), None
            return None, f"{value!r} is not an integer"
    try:
        f = float(s)
    except ValueError:
        return None, f"{value!r} is not a number"
    if not math.isfinite(f):
        return None, f"{value!r} is not a finite number"
    return f, None


def _from_typed(t: type, value: Any, from_text: bool) -> tuple[Any, str | None]:
    """A typed value (TOML or code), or any string for a string key: checked against the key's type."""
    if t is bool:
        if isinstance(value, bool):
            return value, None
        return None, f"expected true or false, got {type_name(value)} {value!r}"
    if t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, float) and not from_text:
            return None, (f"expected an integer, got float {value!r}"
                          + (f"; write {int(value)}" if math.isfinite(value) and value.is_integer() else ""))
        return None, f"expected an integer, got {type_name(value)} {value!r}"
    if t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if not math.isfinite(f):
                return None, f"{value!r} is not a finite number"
            return f, None
        return None, f"expected a number, got {type_name(value)} {value!r}"
    if t is str:
        if isinstance(value, str):
            return value, None
        return None, (f"expected a string, got {type_name(value)} {value!r}"
                      + (f'; write "{value}" in quotes' if isinstance(value, (int, float)) else ""))
    return value, None


def _parses_as(t: type, s: str) -> bool:
    try:
        t(s)
        return True
    except ValueError:
        return False


def text_problem(value: str) -> str | None:
    """What makes a string unusable in a run's records (config.toml, status.json, the run's
    folder name, the experiment log), or None: a control character (U+0000..U+001F, U+007F..U+009F)
    or bytes that are not valid UTF-8 (read from the command line as lone surrogates)."""
    for i, ch in enumerate(value):
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            return f"is not valid UTF-8 (an undecodable byte at character {i + 1}): use plain UTF-8 text"
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return (f"contains the control character U+{code:04X} at character {i + 1}: "
                    f"use printable text (letters, digits, - _ .)")
    return None


def shown_text(value: str) -> str:
    """`value` printable on one line: control characters as \\xNN, undecodable bytes as \\xNN."""
    out = []
    for ch in value:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def value_problem(key: str, value: Any) -> str | None:
    """What is wrong with one typed value of a config key (choices, range), or None. The worker
    checks a run's config.toml with it too."""
    if isinstance(value, str) and (problem := text_problem(value)):
        return f"'{shown_text(value)}' {problem}"
    meta = FIELDS[key].metadata
    choices = meta.get("choices")
    if choices and value not in choices:
        return (f"{value!r} is not one of {', '.join(choices)}"
                + (did_you_mean(str(value), choices) or ""))
    lo, hi, lo_ex = meta.get("min"), meta.get("max"), meta.get("min_exclusive", False)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    bad = (lo is not None and (value <= lo if lo_ex else value < lo)) or (hi is not None and value > hi)
    if not bad:
        return None
    if lo is not None and hi is not None and isinstance(value, float):
        rng = f"{'(' if lo_ex else '['}{num(lo)}, {num(hi)}]"
        return f"{num(value)} is out of range {rng}"
    if lo is not None and (value <= lo if lo_ex else value < lo):
        return f"{num(value)} is out of range: must be {'>' if lo_ex else '>='} {num(lo)}"
    return f"{num(value)} is out of range: must be <= {num(hi)}"


def typed_value(key: str, value: Any, from_text: bool) -> tuple[Any, str | None]:
    """`convert` then `value_problem`: (typed value, None) or (None, the first problem)."""
    typed, msg = convert(key, value, from_text)
    if msg is None:
        msg = value_problem(key, typed)
    return (None, msg) if msg else (typed, None)
