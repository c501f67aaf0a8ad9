"""Preset + overrides -> one typed `RunConfig`, collecting every problem on the way.

`load_config` composes the steps, each owned by its module: find and read the preset
(`presets.py`), type the overrides (`overrides.py`, coercion and range checks in `values.py`),
check the env id and the device on this machine, check the run fits this machine's memory
(`limits.check_fits`), then fill the derived names (preset label, `exp_name`). Every problem is a
`Problem` (file, line, key, what is wrong and what would fix it) and all of them are raised
together in one `ConfigError` (`problems.py`). Checkpoints are resolved separately
(`checkpoint_refs.resolve_checkpoints`). The config API callers use is re-exported here.

No torch at import time: the ManiSkill task check and the CUDA check import it inside their
steps (`import engine.envs.maniskill` took 5.2 s with `python -X importtime`, `import torch` 5.1 s
with perf_counter, on this 2-core machine), so that `playground check` and the launcher start fast.
"""
from __future__ import annotations

from pathlib import Path

from ..envs import check_env_id
from .checkpoint_refs import CheckpointInfo, checkpoint_metas, resolve_checkpoints, used_checkpoint_keys
from .limits import LimitError, check_fits
from .overrides import override_values, parse_overrides
from .presets import META_KEYS, PresetInfo, find_preset, list_presets, preset_label, preset_metadata, \
    preset_values, presets_dir
from .problems import ConfigError, Problem
from .schema import FIELDS, RunConfig
from .values import Given, value_problem


def load_config(preset: str, overrides: dict[str, object] | None = None, *, env: str | None = None,
                seed: int | None = None) -> RunConfig:
    """Resolve preset + overrides (+ env / seed, which win) into a RunConfig.

    Raises ConfigError with every problem found in the preset file, the overrides and the
    env id. Checkpoints are not resolved here: see `resolve_checkpoints`.
    """
    problems: list[Problem] = []
    path = _preset_path(preset, problems)
    given = preset_values(path, problems) if path is not None else {}
    given |= override_values(overrides or {}, problems)
    given |= _arguments(env, seed, problems)
    problems += _env_problems(given) + _device_problems(given)
    if problems:
        raise ConfigError(problems)
    cfg = _fitting_config({key: g.value for key, g in given.items()})
    if not cfg.preset and path is not None:
        cfg.preset = preset_label(preset, path)
    if not cfg.exp_name.strip():
        cfg.exp_name = derive_exp_name(cfg)
    return cfg


def _preset_path(preset: str, problems: list[Problem]) -> Path | None:
    try:
        return find_preset(preset)
    except ConfigError as e:
        problems += e.problems
        return None


def _arguments(env: str | None, seed: int | None, problems: list[Problem]) -> dict[str, Given]:
    """The env and seed given as arguments (they win): the seed typed like an override, the env
    checked with the env id below."""
    given = {} if env is None else {"env": Given(env)}
    return given | override_values({} if seed is None else {"seed": seed}, problems)


def _env_problems(given: dict[str, Given]) -> list[Problem]:
    """The env id names an environment (and a ManiSkill task that is registered)."""
    env = given.get("env", Given(FIELDS["env"].default))
    try:
        check_env_id(env.value)
        if env.value.startswith("maniskill:"):
            from ..envs.maniskill import check_task  # loads torch (5.2 s): only for a ManiSkill env

            check_task(env.value.split(":", 1)[1])  # is the task registered? (a subprocess, once)
    except ImportError as e:  # pragma: no cover - broken install
        return [Problem(f"cannot check the env id ({e})", key="env")]
    except ValueError as e:  # EnvError, one line
        return [Problem(str(e), file=env.file, line=env.line, key="env")]
    return []


def _device_problems(given: dict[str, Given]) -> list[Problem]:
    if "device" not in given or given["device"].value != "cuda":
        return []
    import torch  # 5.1 s: only when a run asks for cuda

    if torch.cuda.is_available():
        return []
    return [Problem("'cuda' asked for, but torch sees no CUDA device on this machine: use --device cpu",
                    key="device")]


def _fitting_config(values: dict[str, object]) -> RunConfig:
    """The RunConfig, or ConfigError when it is too big for this machine's memory."""
    cfg = RunConfig(**values)
    try:
        check_fits(cfg)
    except LimitError as e:
        raise ConfigError(Problem(str(e))) from None
    return cfg


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


__all__ = ["Problem", "ConfigError", "PresetInfo", "CheckpointInfo", "presets_dir", "list_presets",
           "find_preset", "parse_overrides", "load_config", "resolve_checkpoints", "derive_exp_name",
           "used_checkpoint_keys", "checkpoint_metas", "preset_metadata", "META_KEYS", "value_problem"]
