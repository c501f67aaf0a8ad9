"""How config steps report unusable input: `Problem` (one line: file, line, key, what is wrong,
what would fix it), `ConfigError` (every problem found, raised together), and the shared
wording helpers ("did you mean", a path as the user would type it, a number without noise)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass
class Problem:
    """One unusable-input problem, printed on one line: `file:line: key 'k': what; fix`."""
    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"key '{self.key}': " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigError(UserError):
    """Unusable input: carries every `Problem` found (not only the first)."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        super().__init__(list(problems))
        self.problems: list[Problem]


def did_you_mean(word: str, options, quote: str = "'", prefix: str = "") -> str:
    """'; did you mean 'x'?' for the nearest option, or ''."""
    options = list(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:  # a case or dash/underscore slip
        norm = {o.lower().replace("-", "_"): o for o in options}
        hit = norm.get(word.lower().replace("-", "_"))
        close = [hit] if hit else []
    return f"; did you mean {quote}{prefix}{close[0]}{quote}?" if close else ""


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def num(x: float) -> str:
    """0.0 -> '0', 1.0 -> '1', 0.5 -> '0.5', 1e-4 -> '0.0001'."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)
