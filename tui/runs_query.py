"""Which runs the monitor's table shows and in what order: a filter the user types (`RunFilter`)
and the sort key cycled with `t` (`SORTS`). Pure functions over `tui.model.RunView`, no widgets.

A filter is words that must all match (AND); `-word` negates one:
- `status:running` (a prefix of the state: `status:run`; `live` = queued, running or stalled),
  `preset:mc16` (part of the preset), `id:0612` (part of the run id);
- `seed:1`, `seed:0-3`, `seed:1,5`;
- numbers compared: `sr>0.5`, `sr>=50%`, `peak<0.9`, `iter>=10`, `steps>20000`, `seed>=4`;
- any config key: `gamma:0.9`, `estimator:mc`, `update_epochs>=50`, `checkpoint:expert` (a
  checkpoint path by its file name);
- a bare word: part of the id, preset or status.
A word that cannot be read is reported (`RunFilter.problems`) and left out, never an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .core import FIELDS
from .model import RunView

LIVE = ("queued", "running", "stalled")
# status order when sorting by status: what needs attention first
STATUS_ORDER = {s: i for i, s in enumerate(("running", "stalled", "queued", "starting", "failed", "stopped", "done"))}
NUMERIC = {"sr": lambda v: v.sr_now, "peak": lambda v: v.peak_sr, "iter": lambda v: v.iteration,
           "steps": lambda v: v.env_steps, "seed": lambda v: _num(v.config.get("seed"))}
WORD = re.compile(r"^(-?)([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|:|=|>|<)(.*)$")


@dataclass(frozen=True)
class Sort:
    key: str        # RunsTable column key
    label: str
    descending: bool  # its natural direction (best SR first)
    value: Callable[[RunView], Any]


SORTS = (
    Sort("id", "started", False, lambda v: v.run_id),
    Sort("status", "status", False, lambda v: STATUS_ORDER.get(v.state, 9)),
    Sort("preset", "preset", False, lambda v: v.preset.lower()),
    Sort("seed", "seed", False, lambda v: _num(v.config.get("seed"))),
    Sort("sr", "SR now", True, lambda v: v.sr_now),
    Sort("peak", "peak SR", True, lambda v: v.peak_sr),
)


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x).strip().rstrip("%")) / (100.0 if str(x).strip().endswith("%") else 1.0)
    except ValueError:
        return None


def _words(value: Any) -> tuple[str, ...]:
    text = str(value).lower()
    return (text, text.rsplit("/", 1)[-1])


def arrange(views: list[RunView], flt: "RunFilter", sort: Sort, reverse: bool = False) -> list[RunView]:
    """The runs `flt` keeps, ordered by `sort` (its natural direction, flipped by `reverse`);
    runs without a value (no SR yet) come last either way, ties in start order."""
    kept = sorted((v for v in views if flt.matches(v)), key=lambda v: v.run_id)
    with_value = [v for v in kept if sort.value(v) is not None]
    without = [v for v in kept if sort.value(v) is None]
    with_value.sort(key=sort.value, reverse=sort.descending != reverse)
    return with_value + without


def _compare(op: str, have: float | None, want: float) -> bool:
    if have is None:
        return False
    return {">": have > want, ">=": have >= want, "<": have < want, "<=": have <= want,
            "=": have == want, ":": have == want, "!=": have != want}[op]


def _seed_set(text: str) -> set[int] | None:
    out: set[int] = set()
    for part in text.split(","):
        a, dash, b = part.partition("-")
        if not a.strip().isdigit() or (dash and not b.strip().isdigit()):
            return None
        out.update(range(int(a), int(b) + 1) if dash else {int(a)})
    return out


def _term(key: str, op: str, value: str) -> tuple[Callable[[RunView], bool] | None, str | None]:
    """One `key op value` word -> (test, None) or (None, problem)."""
    low = value.lower()
    if key == "status" and op in (":", "="):
        return (lambda v: v.state in LIVE) if low == "live" else (lambda v: v.state.startswith(low)), None
    if key in ("preset", "id") and op in (":", "="):
        return (lambda v: low in (v.preset if key == "preset" else v.run_id).lower()), None
    if key == "seed" and op == ":":
        seeds = _seed_set(value)
        if seeds is None:
            return None, f"seed:{value} (a seed, a range 0-3 or a list 1,5)"
        return (lambda v: _num(v.config.get("seed")) in seeds), None
    number = _num(value)
    if key in NUMERIC:
        if number is None:
            return None, f"{key}{op}{value} (a number: {key}>0.5 or {key}>50%)"
        get = NUMERIC[key]
        return (lambda v: _compare(op, get(v), number)), None
    if key in FIELDS:
        if op in (":", "=") and number is None:  # (a checkpoint path also matches by its file name: start)
            return (lambda v: any(x.startswith(low) for x in _words(v.config.get(key, "")))), None
        if number is None:
            return None, f"{key}{op}{value} (a number after {op})"
        return (lambda v: _compare(op, _num(v.config.get(key)), number)), None
    return None, f"{key}{op}{value}: no such key (status, preset, id, seed, sr, peak, iter, steps or a config key)"


@dataclass
class RunFilter:
    """A parsed filter: `tests` (all must pass), `problems` (words left out, one line each)."""
    text: str = ""
    tests: list[Callable[[RunView], bool]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "RunFilter":
        f = cls(text.strip())
        for word in f.text.split():
            m = WORD.match(word)
            negate = word.startswith("-")
            if m:
                test, problem = _term(m.group(2).lower(), m.group(3), m.group(4))
            else:
                bare = word.lstrip("-").lower()
                test, problem = (lambda v, b=bare: b in v.run_id.lower() or b in v.preset.lower()
                                 or v.state.startswith(b)), None
            if problem:
                f.problems.append(problem)
            elif test is not None:
                f.tests.append((lambda v, t=test: not t(v)) if negate else test)
        return f

    def matches(self, v: RunView) -> bool:
        return all(t(v) for t in self.tests)

    @property
    def active(self) -> bool:
        return bool(self.tests)
