"""The one error base for input a person can fix: `UserError(problems)`.

A `UserError` carries `problems`, a list of one-line descriptions (strings, or objects whose
`str()` is one line, such as the config loader's `Problem`, which also names a file, line and
key). `str(error)` is the problems, one per line; `error.lines()` gives them as a list.

Every engine error that means "the input is unusable" derives from it: `ConfigError`
(engine.config.problems), `CheckpointError` (engine.checkpoints), `EnvError` (engine.envs.ids),
`RecordError` (engine.records), `SweepError` (engine.launcher.sweep), and the launcher's own
(`engine.launcher.plan`). Front doors tell errors apart by this base only: the CLI turns a
`UserError` into `error: ...` lines and exit code 2, the TUI into a message on screen.

This module imports nothing, so every layer can use it.
"""
from __future__ import annotations

from typing import Any, Iterable


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of blanks folded into single spaces."""
    return " ".join(str(text).split()) if "\n" in str(text) else str(text)


class UserError(Exception):
    """Unusable input: one or more one-line problems (what is wrong, where, and how to fix it)."""

    def __init__(self, problems: str | Any | Iterable[Any] = ()):
        if isinstance(problems, str) or not isinstance(problems, (list, tuple)):
            problems = [problems]
        self.problems: list[Any] = [p for p in problems if str(p)]
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        """The problems as one-line strings."""
        return [one_line(str(p)) for p in self.problems] or [one_line(str(self))]
