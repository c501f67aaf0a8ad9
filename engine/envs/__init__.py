"""Environment registry: turns an env id into a `BatchedEnv`.

Ids: `pickcube-lite` (the embedded torch twin, the default) and `maniskill:<TaskId>`
(the real ManiSkill3 task, e.g. `maniskill:PickCube-v1`).
"""
from __future__ import annotations

from .ids import DEFAULT_ENV, KNOWN_ENVS, EnvError, check_env_id


def __getattr__(name: str):
    # the tensor types load torch (`import torch`: 3.3 s here, time.perf_counter): import them only when asked
    # for (the validator and the launcher import this package for `check_env_id` and must stay light)
    if name in ("BatchedEnv", "EnvState", "StepResult"):
        from . import base

        return getattr(base, name)
    raise AttributeError(name)


def make_env(
    env_id: str = DEFAULT_ENV,
    num_envs: int = 1,
    *,
    seed: int = 0,
    reward_mode: str = "sparse",
    autoreset: bool = True,
    ignore_terminations: bool = False,
    device: str = "cpu",
    control_mode: str | None = None,
) -> BatchedEnv:
    """`control_mode` None = the env's default (pickcube-lite accepts only its own, pd_ee_delta_pos)."""
    check_env_id(env_id)
    if num_envs < 1:
        raise EnvError(f"num_envs must be >= 1, got {num_envs}")
    if reward_mode not in ("sparse", "dense"):
        raise EnvError(f"reward_mode must be 'sparse' or 'dense', got {reward_mode!r}")
    if env_id == "pickcube-lite":
        if control_mode not in (None, "pd_ee_delta_pos"):
            raise EnvError(f"pickcube-lite has one controller, pd_ee_delta_pos; control_mode {control_mode!r} "
                           "needs a maniskill: env")
        from .pickcube_lite import PickCubeLite  # lazy: torch (see __getattr__)

        return PickCubeLite(num_envs, seed=seed, reward_mode=reward_mode, autoreset=autoreset,
                            ignore_terminations=ignore_terminations, device=device)
    from .maniskill import ManiSkillEnv  # lazy: torch (see __getattr__)

    extra = {} if control_mode is None else {"control_mode": control_mode}
    return ManiSkillEnv(env_id.split(":", 1)[1], num_envs, seed=seed, reward_mode=reward_mode,
                        autoreset=autoreset, ignore_terminations=ignore_terminations, device=device, **extra)


__all__ = ["BatchedEnv", "EnvError", "EnvState", "StepResult", "make_env", "check_env_id", "DEFAULT_ENV", "KNOWN_ENVS"]
