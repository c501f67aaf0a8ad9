"""Preset + overrides -> one typed `RunConfig`, collecting every problem on the way.

A preset is a flat TOML table of config keys (the seed's flag names, see `schema.py`) plus
three optional metadata keys that are not config keys: `description` (str), `expected_sr`
(float: the seed's peak SR for this config) and `seed_command` (str: the seed command it
reproduces). Overrides come from the command line (`--key value`, strings converted to the
key's type) or from code (typed values).

Every problem found is collected as a `Problem` (file, line, key, what is wrong and what would
fix it) and raised together in one `ConfigError`: unknown keys (with "did you mean"), wrong
types, values outside `choices` / `min` / `max`, TOML syntax errors, unknown presets, unknown
env ids, a run too big for this machine's memory (`limits.check_fits`), and (in `resolve_checkpoints`) checkpoints that are missing, corrupt, of another
environment or of the wrong kind.

No torch at import time: `engine.checkpoints` and `engine.envs` are imported inside the
functions that need them, so that `playground check` and the launcher start fast.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .. import settings
from .limits import LimitError, check_fits
from .schema import FIELDS, RunConfig, field_type

# --- problems -----------------------------------------------------------------------------

META_KEYS: dict[str, type] = {"description": str, "expected_sr": float, "seed_command": str}
BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
              "false": False, "0": False, "no": False, "off": False}


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


def _did_you_mean(word: str, options, quote: str = "'", prefix: str = "") -> str:
    """'; did you mean 'x'?' for the nearest option, or ''."""
    options = list(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:  # a case or dash/underscore slip
        norm = {o.lower().replace("-", "_"): o for o in options}
        hit = norm.get(word.lower().replace("-", "_"))
        close = [hit] if hit else []
    return f"; did you mean {quote}{prefix}{close[0]}{quote}?" if close else ""


def _display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _num(x: float) -> str:
    """0.0 -> '0', 1.0 -> '1', 0.5 -> '0.5', 1e-4 -> '0.0001'."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)


# --- presets ------------------------------------------------------------------------------

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
    import engine  # the package itself: cheap, no torch

    return Path(engine.__file__).resolve().parent.parent / "presets"


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
        hint = _did_you_mean(s, names)
        if not hint and Path(s).is_file():  # a file in the working directory without .toml suffix
            return Path(s)
        avail = f" (presets: {', '.join(names)})" if names else f" (no presets found in {presets_dir()})"
        raise ConfigError(Problem(f"unknown preset '{s}'{hint or avail} (or give a path to a .toml file)"))
    p = Path(s).expanduser()
    if p.is_dir():
        raise ConfigError(Problem(f"preset {s} is a directory, not a .toml file", file=s))
    if not p.is_file():
        stem = p.name[:-5] if p.name.endswith(".toml") else p.name
        hint = _did_you_mean(stem, _preset_names())
        raise ConfigError(Problem(f"preset file {s} does not exist"
                                  + (f"{hint[:-1]} (a preset name)?" if hint else "")))
    return p


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


def _read_preset_file(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], dict[str, int]] | None:
    shown = _display_path(path)
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


def list_presets() -> list[PresetInfo]:
    """Every preset in presets_dir(), sorted by name; unreadable ones say so in their description."""
    out = []
    d = presets_dir()
    if not d.is_dir():
        return out
    defaults = RunConfig()
    for path in sorted(d.glob("*.toml")):
        problems: list[Problem] = []
        read = _read_preset_file(path, problems)
        data = read[0] if read else {}

        def s(key: str, default: str) -> str:
            v = data.get(key, default)
            return v if isinstance(v, str) else str(v)

        desc = s("description", "")
        if problems:
            desc = f"(cannot be read: {problems[0]})"
        es = data.get("expected_sr")
        out.append(PresetInfo(
            name=path.stem, path=path, description=desc.strip().splitlines()[0] if desc.strip() else "",
            regime=s("regime", defaults.regime), estimator=s("estimator", defaults.estimator),
            update=s("update", defaults.update),
            expected_sr=float(es) if isinstance(es, (int, float)) and not isinstance(es, bool) else None,
            seed_command=data.get("seed_command") if isinstance(data.get("seed_command"), str) else None))
    return out


def preset_metadata(name_or_path: str) -> dict[str, Any]:
    """The metadata keys (description, expected_sr, seed_command) of a preset; {} if unreadable."""
    try:
        path = find_preset(name_or_path)
    except ConfigError:
        return {}
    read = _read_preset_file(path, [])
    if not read:
        return {}
    return {k: v for k, v in read[0].items() if k in META_KEYS}


# --- overrides ----------------------------------------------------------------------------

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
            problems.append(Problem(f"unknown option --{body}{_did_you_mean('--' + key, flags, quote='')}",
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


# --- values -------------------------------------------------------------------------------

_TYPE_WORD = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_name(v: Any) -> str:
    return {bool: "bool", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def _convert(key: str, value: Any, from_text: bool) -> tuple[Any, str | None]:
    """(typed value, None) or (None, problem message). `from_text`: value came from a command line."""
    t = field_type(key)
    if isinstance(value, str) and (from_text or t is not str):
        if t is str:
            return value, None
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
    if t is bool:
        if isinstance(value, bool):
            return value, None
        return None, f"expected true or false, got {_type_name(value)} {value!r}"
    if t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, float) and not from_text:
            return None, (f"expected an integer, got float {value!r}"
                          + (f"; write {int(value)}" if math.isfinite(value) and value.is_integer() else ""))
        return None, f"expected an integer, got {_type_name(value)} {value!r}"
    if t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if not math.isfinite(f):
                return None, f"{value!r} is not a finite number"
            return f, None
        return None, f"expected a number, got {_type_name(value)} {value!r}"
    if t is str:
        if isinstance(value, str):
            return value, None
        return None, (f"expected a string, got {_type_name(value)} {value!r}"
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


def _check_meta(key: str, value: Any) -> str | None:
    """Range / choices check from the field metadata; a problem message or None."""
    if isinstance(value, str) and (problem := text_problem(value)):
        return f"'{shown_text(value)}' {problem}"
    meta = FIELDS[key].metadata
    choices = meta.get("choices")
    if choices and value not in choices:
        return (f"{value!r} is not one of {', '.join(choices)}"
                + (_did_you_mean(str(value), choices) or ""))
    lo, hi, lo_ex = meta.get("min"), meta.get("max"), meta.get("min_exclusive", False)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    bad = (lo is not None and (value <= lo if lo_ex else value < lo)) or (hi is not None and value > hi)
    if not bad:
        return None
    if lo is not None and hi is not None and isinstance(value, float):
        rng = f"{'(' if lo_ex else '['}{_num(lo)}, {_num(hi)}]"
        return f"{_num(value)} is out of range {rng}"
    if lo is not None and (value <= lo if lo_ex else value < lo):
        return f"{_num(value)} is out of range: must be {'>' if lo_ex else '>='} {_num(lo)}"
    return f"{_num(value)} is out of range: must be <= {_num(hi)}"


def value_problem(key: str, value: Any) -> str | None:
    """What is wrong with one typed value of a config key (choices, range), or None. The worker
    checks a run's config.toml with it too."""
    return _check_meta(key, value)


def _device_problems() -> list[Problem]:
    import torch  # only for device = cuda

    if torch.cuda.is_available():
        return []
    return [Problem("'cuda' asked for, but torch sees no CUDA device on this machine: use --device cpu",
                    key="device")]


def _check_meta_key(key: str, value: Any) -> str | None:
    if key == "expected_sr":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number in [0, 1] (the seed's peak SR), got {_type_name(value)} {value!r}"
        if not 0.0 <= float(value) <= 1.0:
            return f"{_num(value)} is out of range [0, 1] (a success rate: 0.991, not 99.1)"
        return None
    if not isinstance(value, str):
        return f"expected a string, got {_type_name(value)} {value!r}"
    return None


# --- names --------------------------------------------------------------------------------

def derive_exp_name(cfg: RunConfig) -> str:
    """A name that states what the config runs, e.g. `online-mc16-awr-b0.5-g0.8`.

    Tokens: regime, estimator (`mc<k>` for MC, with `onpolicy` / `datapolicy` for the
    rollout policy when not optimal; `td<n>` for TD), update, AWR / RECAP beta, RECAP
    alpha, gamma. Never trips rule KB05.
    """
    parts = [cfg.regime]
    if cfg.estimator == "mc":
        parts.append(f"mc{cfg.mc_samples}")
        if cfg.rollout_policy == "current":
            parts.append("onpolicy")
        elif cfg.rollout_policy == "data":
            parts.append("datapolicy")
    elif cfg.estimator == "td":
        parts.append(f"td{cfg.td_n}")
    else:
        parts.append(cfg.estimator)
    parts.append(cfg.update)
    if cfg.update in ("awr", "recap"):
        parts.append(f"b{cfg.awr_beta:g}")
    if cfg.update == "recap":
        parts.append(f"a{cfg.recap_alpha:g}")
    parts.append(f"g{cfg.gamma:g}")
    return "-".join(parts)


# --- the loader ---------------------------------------------------------------------------

def _preset_label(preset: str, path: Path) -> str:
    try:
        if path.resolve().parent == presets_dir().resolve():
            return path.stem
    except OSError:
        pass
    return preset


def load_config(preset: str, overrides: dict[str, object] | None = None, *, env: str | None = None,
                seed: int | None = None) -> RunConfig:
    """Resolve preset + overrides (+ env / seed, which win) into a RunConfig.

    Raises ConfigError with every problem found in the preset file, the overrides and the
    env id. Checkpoints are not resolved here: see `resolve_checkpoints`.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    where: dict[str, tuple[str | None, int | None]] = {}   # key -> (file, line) it was set at

    path: Path | None = None
    try:
        path = find_preset(preset)
    except ConfigError as e:
        problems += e.problems

    if path is not None:
        read = _read_preset_file(path, problems)
        if read is not None:
            data, lines = read
            shown = _display_path(path)
            for key, value in data.items():
                line = lines.get(key)
                if isinstance(value, dict):
                    problems.append(Problem(f"is a table, but a preset is one flat table of config keys: "
                                            f"write the keys at the top level (no [{key}] or {key}.x)",
                                            file=shown, line=line, key=key))
                    continue
                if key in META_KEYS:
                    msg = _check_meta_key(key, value)
                    if msg:
                        problems.append(Problem(msg, file=shown, line=line, key=key))
                    continue
                if key not in FIELDS:
                    problems.append(Problem("unknown key" + (_did_you_mean(key, list(FIELDS) + list(META_KEYS))
                                                            or "; config keys are the seed's flag names "
                                                               "(mc_samples, awr_beta, gamma, ...)"),
                                            file=shown, line=line, key=key))
                    continue
                typed, msg = _convert(key, value, from_text=False)
                if msg is None:
                    msg = _check_meta(key, typed)
                if msg:
                    problems.append(Problem(msg, file=shown, line=line, key=key))
                    continue
                values[key] = typed
                where[key] = (shown, line)

    for key, value in (overrides or {}).items():
        if key in META_KEYS:
            problems.append(Problem("is preset metadata, not a config key: it cannot be overridden", key=key))
            continue
        if key not in FIELDS:
            problems.append(Problem("unknown key" + (_did_you_mean(key, list(FIELDS)) or
                                                    "; config keys are the seed's flag names"), key=key))
            continue
        typed, msg = _convert(key, value, from_text=isinstance(value, str))
        if msg is None:
            msg = _check_meta(key, typed)
        if msg:
            problems.append(Problem(msg, key=key))
            continue
        values[key] = typed
        where[key] = (None, None)

    if env is not None:
        values["env"] = env
        where["env"] = (None, None)
    if seed is not None:
        typed, msg = _convert("seed", seed, from_text=isinstance(seed, str))
        msg = msg or _check_meta("seed", typed)
        if msg:
            problems.append(Problem(msg, key="seed"))
        else:
            values["seed"] = typed
            where["seed"] = (None, None)

    env_id = values.get("env", FIELDS["env"].default)
    try:
        from engine.envs import check_env_id  # imports torch: only here, not at module import

        check_env_id(env_id)
        if env_id.startswith("maniskill:"):
            from engine.envs.maniskill import check_task  # is the task registered? (a subprocess, once)

            check_task(env_id.split(":", 1)[1])
    except ImportError as e:  # pragma: no cover - broken install
        problems.append(Problem(f"cannot check the env id ({e})", key="env"))
    except ValueError as e:  # EnvError
        f, line = where.get("env", (None, None))
        problems.append(Problem(str(e), file=f, line=line, key="env"))

    if values.get("device") == "cuda":
        problems += _device_problems()
    if problems:
        raise ConfigError(problems)
    cfg = RunConfig(**values)
    try:
        check_fits(cfg)
    except LimitError as e:
        raise ConfigError(Problem(str(e))) from None
    if not cfg.preset and path is not None:
        cfg.preset = _preset_label(preset, path)
    if not cfg.exp_name.strip():
        cfg.exp_name = derive_exp_name(cfg)
    return cfg


# --- checkpoints --------------------------------------------------------------------------

@dataclass
class CheckpointInfo:
    key: str                  # config key: checkpoint, critic_checkpoint, optimal_checkpoint, data_checkpoint
    spec: str                 # its value: role, seed name, path or none
    role: str | None          # role the spec names (seed names mapped), None for a path / none
    path: Path | None         # the file, None for none or a role not built yet
    meta: dict | None         # the checkpoint's metadata when the file exists
    missing_role: bool        # a role / seed name whose ladder file does not exist yet (pretrain builds it)


def used_checkpoint_keys(cfg: RunConfig) -> list[str]:
    """The checkpoint keys this config actually uses."""
    keys = ["checkpoint"]
    if (cfg.critic_checkpoint or "none").strip().lower() != "none":
        keys.append("critic_checkpoint")
    if cfg.estimator == "mc" and cfg.rollout_policy == "optimal":
        keys.append("optimal_checkpoint")
    if cfg.regime == "offline" or (cfg.estimator == "mc" and cfg.rollout_policy == "data"):
        keys.append("data_checkpoint")
    return keys


def resolve_checkpoints(cfg: RunConfig, *, obs_dim: int | None = None, act_dim: int | None = None
                        ) -> tuple[dict[str, CheckpointInfo], list[Problem]]:
    """Resolve every checkpoint key the config uses; (infos by key, problems).

    A role / seed name not built yet is not a problem (`missing_role=True`); a missing path, a
    corrupt file, a checkpoint of another env or other obs/act sizes, or a critic where a
    policy belongs (and vice versa) is.
    """
    from engine import checkpoints as ck  # torch: imported only when checkpoints are looked at
    from engine.config.schema import expected_action_dim

    if obs_dim is None:
        obs_dim = ck.env_obs_dim(cfg.env)
    if act_dim is None:
        act_dim = expected_action_dim(cfg.env, getattr(cfg, "control_mode", "auto"))
    infos: dict[str, CheckpointInfo] = {}
    problems: list[Problem] = []
    names = list(ck.ROLES) + list(ck.ROLE_SEED_NAME.values())
    for key in used_checkpoint_keys(cfg):
        spec = (getattr(cfg, key) or "none").strip()
        want = "critic" if key == "critic_checkpoint" else "policy"
        if spec.lower() == "none":
            infos[key] = CheckpointInfo(key, spec, None, None, None, False)
            continue
        role = ck.canonical_role(spec)
        if role is not None:
            kind = "critic" if role in ck.CRITIC_ROLES else "policy"
            if kind != want:
                fix = ("a policy: start, expert, optimal (or ckpt_76_logstd-1.5, ckpt_101, ckpt_301)" if want == "policy"
                       else "a critic: critic-expert (pretrained_critic_sparse) or critic-optimal")
                problems.append(Problem(f"{spec!r} is a {kind} role but {key} needs {fix}", key=key))
                infos[key] = CheckpointInfo(key, spec, role, None, None, False)
                continue
        try:
            res = ck.resolve_checkpoint(spec, cfg.env)
        except ck.CheckpointError as e:
            if role is not None:
                try:
                    ck.read_index(cfg.env)
                except ck.CheckpointError as e2:
                    problems.append(Problem(str(e2), key=key))
                    infos[key] = CheckpointInfo(key, spec, role, None, None, False)
                    continue
                infos[key] = CheckpointInfo(key, spec, role, None, None, True)
                continue
            msg = str(e)
            if not any(sep in spec for sep in ("/", os.sep)) and not spec.endswith(".pt"):
                msg += _did_you_mean(spec, names) or ""
            problems.append(Problem(msg, key=key))
            infos[key] = CheckpointInfo(key, spec, None, Path(spec).expanduser(), None, False)
            continue
        try:
            meta = ck.verified_meta(res.path)  # the weights' own sizes, not the editable .json beside them
        except ck.CheckpointError as e:
            problems.append(Problem(str(e), key=key))
            infos[key] = CheckpointInfo(key, spec, role, res.path, None, False)
            continue
        infos[key] = CheckpointInfo(key, spec, role, res.path, meta, False)
        try:
            ck.check_compatible(meta, cfg.env, obs_dim, act_dim if want == "policy" else None,
                                what=f"{key} {spec!r}")
        except ck.CheckpointError as e:
            problems.append(Problem(str(e), key=key))
        kind = meta.get("kind")
        if kind != want:
            if want == "policy":
                problems.append(Problem(f"{spec!r} holds a critic, not a policy: give it as critic_checkpoint, "
                                        f"and a policy here (start, expert, optimal or a policy file)", key=key))
            else:
                problems.append(Problem(f"{spec!r} holds a policy, not a critic: use a critic here "
                                        "(critic-expert = pretrained_critic_sparse)", key=key))
    return infos, problems


def checkpoint_metas(infos: dict[str, CheckpointInfo]) -> dict[str, dict | None]:
    """{key: meta or None} for `engine.validate.validate`."""
    return {k: i.meta for k, i in infos.items()}


__all__ = ["Problem", "ConfigError", "PresetInfo", "CheckpointInfo", "presets_dir", "list_presets",
           "find_preset", "parse_overrides", "load_config", "resolve_checkpoints", "derive_exp_name",
           "used_checkpoint_keys", "checkpoint_metas", "preset_metadata", "META_KEYS"]
