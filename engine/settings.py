"""Every environment variable the project reads, declared and validated in one place.

`SETTINGS` names each variable with its kind, default and meaning (docs/architecture.md has the
same table). Readers call `get(NAME)`: the parsed value, or the default when the variable is unset
or empty. A value that cannot mean anything (garbage, a non-finite or negative number, an
unbalanced quote in a command) raises `SettingError`, one line naming the variable, what is wrong
and what would fix it. The front doors call `check_all()` first, so bad settings are refused
before anything is written (a prepared run never waits for a worker that cannot start).

Kinds: `path` (any non-empty text), `bool` (1/0, true/false, yes/no, on/off), `int` (a whole
number >= the setting's minimum), `number` (a finite number >= its minimum), `threads` (`auto` or
a whole number >= 1; 0 means auto), `command` (a shell-quoted command line), `fd` (internal),
`socketdir` (a directory Ray makes AF_UNIX sockets under: its length is bounded).

`get` accepts an `environ` mapping (default `os.environ`) so a caller can check the environment
it is about to hand to a child process. This module imports only `engine.errors`.
"""
from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import UserError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
# AF_UNIX socket paths hold 107 bytes; Ray puts `ray/session_<date>_<pid>/sockets/plasma_store.N`
# (up to 70 bytes) under its temp dir ($RAY_TMPDIR, else $TMPDIR, else /tmp), so that dir gets the rest
RAY_TMPDIR_MAX = 37


class SettingError(UserError):
    """An environment variable with a value the project cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str
    default: Any
    meaning: str
    where: str
    minimum: float | None = None


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("PLAYGROUND_RUNS_DIR", "path", "runs", "the runs directory (`--runs-dir` wins)", "engine.records.runs_dir"),
    Setting("PLAYGROUND_EXPERIMENTS_LOG", "path", None,
            "the experiment log file (default: experiments/log.md of the project holding the runs dir)",
            "engine.records.experiments_log_path"),
    Setting("PLAYGROUND_CHECKPOINTS_DIR", "path", "checkpoints", "where built ladders live",
            "engine.checkpoints.checkpoints_dir"),
    Setting("PLAYGROUND_SHIPPED_LADDERS", "bool", True, "use the ladders shipped in the package",
            "engine.checkpoints"),
    Setting("PLAYGROUND_PRESETS_DIR", "path", None, "the presets folder (default: the repository's presets/)",
            "engine.config.presets.presets_dir"),
    Setting("PLAYGROUND_FIGURES_DIR", "path", "figures", "where the TUI saves figures", "tui.app"),
    Setting("PLAYGROUND_MANISKILL_PROCS", "int", None,
            "processes hosting CPU ManiSkill envs (default: one per usable core)", "engine.runtime.default_procs", 1),
    Setting("PLAYGROUND_MEM_AVAILABLE_MIB", "number", None,
            "memory (MiB) a new run may use (default: MemAvailable, capped by the cgroup)",
            "engine.config.limits", 1),
    Setting("PLAYGROUND_THREADS", "threads", "auto", "torch threads per process: auto (the idle cores) or N",
            "engine.runtime"),
    Setting("PLAYGROUND_THREADS_MAX", "int", None, "cap on auto threads (a local sweep sets cores // parallel)",
            "engine.runtime", 1),
    Setting("PLAYGROUND_ONEDNN", "bool", False,
            "opt in (1) to the oneDNN fused Linear+Tanh CPU path (a private torch op)", "engine.kernels"),
    Setting("PLAYGROUND_SAPIEN_HEADLESS", "bool", None,
            "force (1) or forbid (0) SAPIEN's headless render stand-in (default: probe)",
            "engine.envs.sapien_headless"),
    Setting("PLAYGROUND_DEBUG", "bool", False, "print tracebacks of internal errors", "engine.cli.errors"),
    Setting("PLAYGROUND_WORKER", "command", None, "command prefix replacing `python -m engine` (tests)",
            "engine.launcher.spawn"),
    Setting("PLAYGROUND_PRETRAIN_WORKER", "command", None,
            "command prefix replacing `python -m engine pretrain` (tests)", "engine.launcher.pretrain_job"),
    Setting("PLAYGROUND_RAY_SHIP_CODE", "bool", True, "ship the engine's code to a Ray cluster",
            "engine.launcher.distributed.cluster"),
    Setting("PLAYGROUND_RAY_SCRATCH", "path", None,
            "where Ray nodes keep private run directories (default: $TMPDIR/playground-ray)",
            "engine.launcher.distributed.backend"),
    Setting("PLAYGROUND_RAY_KEEP_SCRATCH", "bool", False, "keep Ray nodes' private run directories",
            "engine.launcher.distributed.backend"),
    Setting("PLAYGROUND_RUN_LOCK_FD", "fd", None, "internal: the run lock a launcher hands its worker",
            "engine.runlock"),
    Setting("RAY_TMPDIR", "socketdir", None,
            f"Ray's temp dir (its sockets live there: at most {RAY_TMPDIR_MAX} characters)",
            "engine.launcher.distributed.cluster"),
)}


def _bad(s: Setting, raw: str, why: str, fix: str) -> SettingError:
    return SettingError(f"environment variable {s.name}={raw!r} {why}: {fix} (or unset it for the default)")


def _parse(s: Setting, raw: str) -> Any:
    value = raw.strip()
    if s.kind in ("path", "socketdir"):
        if "\0" in raw:
            raise _bad(s, raw, "contains a NUL byte", "set it to a plain path")
        if s.kind == "socketdir" and len(os.fsencode(raw)) > RAY_TMPDIR_MAX:
            raise _bad(s, raw, f"is {len(os.fsencode(raw))} bytes long, too long for Ray's AF_UNIX socket paths",
                       f"shorten it to at most {RAY_TMPDIR_MAX} bytes, e.g. RAY_TMPDIR=/tmp/ray")
        return raw
    if s.kind == "bool":
        if value.lower() in TRUE or value.lower() in FALSE:
            return value.lower() in TRUE
        raise _bad(s, raw, "is not a yes/no value", "use 1 or 0")
    if s.kind == "command":
        try:
            words = shlex.split(raw)
        except ValueError as e:
            raise _bad(s, raw, f"is not a shell-quoted command ({e})", "balance its quotes") from None
        if not words:
            raise _bad(s, raw, "names no command", "give a command line")
        return words
    if s.kind == "threads" and value.lower() in ("auto", "0"):
        return "auto"
    return _number(s, raw, value)


def _number(s: Setting, raw: str, value: str) -> int | float:
    whole = s.kind in ("int", "threads", "fd")
    try:
        num: int | float = int(value) if whole else float(value)
    except ValueError:
        raise _bad(s, raw, f"is not {'a whole number' if whole else 'a number'}",
                   "set it to a number such as 4" if s.kind != "threads" else "use auto or a whole number") from None
    if not math.isfinite(num):
        raise _bad(s, raw, "is not a finite number", "set it to a finite number")
    lo = s.minimum if s.minimum is not None else (0 if s.kind == "fd" else 1)
    if num < lo:
        raise _bad(s, raw, f"must be >= {lo:g}", f"set it to {lo:g} or more")
    return num


def get(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed value of setting `name` (its default when unset or empty); SettingError when
    the value cannot be used."""
    s = SETTINGS[name]
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or raw.strip() == "":
        return s.default
    return _parse(s, raw)


def check_all(environ: Mapping[str, str] | None = None, *, skip: tuple[str, ...] = ("RAY_TMPDIR",)) -> None:
    """Validate every declared setting (RAY_TMPDIR only where Ray starts); SettingError with one
    line per unusable variable."""
    problems: list[str] = []
    for name in SETTINGS:
        if name in skip:
            continue
        try:
            get(name, environ)
        except SettingError as e:
            problems += e.lines()
    if problems:
        raise SettingError(problems)


def check_ray_tmpdir(environ: Mapping[str, str] | None = None) -> None:
    """Before Ray starts: the directory Ray puts its sockets under ($RAY_TMPDIR, else $TMPDIR)
    must be short enough for AF_UNIX paths; SettingError naming the variable to shorten."""
    environ = os.environ if environ is None else environ
    if (environ.get("RAY_TMPDIR") or "").strip():
        get("RAY_TMPDIR", environ)
        return
    tmp = environ.get("TMPDIR") or ""
    if len(os.fsencode(tmp)) > RAY_TMPDIR_MAX:
        raise SettingError(f"environment variable TMPDIR={tmp!r} is {len(os.fsencode(tmp))} bytes long, too long "
                           f"for Ray's AF_UNIX socket paths (Ray uses it when RAY_TMPDIR is unset): set "
                           f"RAY_TMPDIR to a directory of at most {RAY_TMPDIR_MAX} bytes, e.g. RAY_TMPDIR=/tmp/ray")


def table_rows() -> list[tuple[str, str, str, str]]:
    """(name, default, meaning, where validated/read) of every setting: docs/architecture.md's table."""
    return [(s.name, "-" if s.default is None else str(s.default), s.meaning, s.where) for s in SETTINGS.values()]
