"""A config's checkpoint keys (`checkpoint`, `critic_checkpoint`, `optimal_checkpoint`,
`data_checkpoint`) resolved to files: which keys a config uses, and for each the role it names,
the file and its verified metadata, or the problems (a missing path, a corrupt file, a
checkpoint of another env or other obs/act sizes, a critic where a policy belongs and vice
versa). A role not built yet is not a problem: `missing_role` (pretraining builds it)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoints as ck
from .problems import Problem, did_you_mean
from .schema import RunConfig, expected_action_dim

_POLICY_FIX = "a policy: start, expert, optimal (or ckpt_76_logstd-1.5, ckpt_101, ckpt_301)"
_CRITIC_FIX = "a critic: critic-expert (pretrained_critic_sparse) or critic-optimal"


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
    """Resolve every checkpoint key the config uses; (infos by key, problems)."""
    if obs_dim is None:
        obs_dim = ck.env_obs_dim(cfg.env)
    if act_dim is None:
        act_dim = expected_action_dim(cfg.env, getattr(cfg, "control_mode", "auto"))
    infos: dict[str, CheckpointInfo] = {}
    problems: list[Problem] = []
    for key in used_checkpoint_keys(cfg):
        infos[key] = _resolve_key(cfg, key, obs_dim, act_dim, problems)
    return infos, problems


def _resolve_key(cfg: RunConfig, key: str, obs_dim: int | None, act_dim: int | None,
                 problems: list[Problem]) -> CheckpointInfo:
    """One checkpoint key: its info, its problems added to `problems`."""
    spec = (getattr(cfg, key) or "none").strip()
    want = "critic" if key == "critic_checkpoint" else "policy"
    if spec.lower() == "none":
        return CheckpointInfo(key, spec, None, None, None, False)
    role = ck.canonical_role(spec)
    if role is not None:
        kind = "critic" if role in ck.CRITIC_ROLES else "policy"
        if kind != want:
            problems.append(Problem(f"{spec!r} is a {kind} role but {key} needs "
                                    f"{_POLICY_FIX if want == 'policy' else _CRITIC_FIX}", key=key))
            return CheckpointInfo(key, spec, role, None, None, False)
    try:
        res = ck.resolve_checkpoint(spec, cfg.env)
    except ck.CheckpointError as e:
        return _unresolved(cfg, key, spec, role, e, problems)
    try:
        meta = ck.verified_meta(res.path)  # the weights' own sizes, not the editable .json beside them
    except ck.CheckpointError as e:
        problems.append(Problem(str(e), key=key))
        return CheckpointInfo(key, spec, role, res.path, None, False)
    try:
        ck.check_compatible(meta, cfg.env, obs_dim, act_dim if want == "policy" else None, what=f"{key} {spec!r}")
    except ck.CheckpointError as e:
        problems.append(Problem(str(e), key=key))
    if meta.get("kind") != want:
        problems.append(Problem(f"{spec!r} holds a critic, not a policy: give it as critic_checkpoint, "
                                f"and a policy here (start, expert, optimal or a policy file)" if want == "policy"
                                else f"{spec!r} holds a policy, not a critic: use a critic here "
                                "(critic-expert = pretrained_critic_sparse)", key=key))
    return CheckpointInfo(key, spec, role, res.path, meta, False)


def _unresolved(cfg: RunConfig, key: str, spec: str, role: str | None, e: ck.CheckpointError,
                problems: list[Problem]) -> CheckpointInfo:
    """A spec that names no file: a role not built yet (unless the ladder index is unreadable),
    else a problem with the nearest role or seed name."""
    if role is not None:
        try:
            ck.read_index(cfg.env)
        except ck.CheckpointError as e2:
            problems.append(Problem(str(e2), key=key))
            return CheckpointInfo(key, spec, role, None, None, False)
        return CheckpointInfo(key, spec, role, None, None, True)
    msg = str(e)
    if not any(sep in spec for sep in ("/", os.sep)) and not spec.endswith(".pt"):
        msg += did_you_mean(spec, list(ck.ROLES) + list(ck.ROLE_SEED_NAME.values())) or ""
    problems.append(Problem(msg, key=key))
    return CheckpointInfo(key, spec, None, Path(spec).expanduser(), None, False)


def checkpoint_metas(infos: dict[str, CheckpointInfo]) -> dict[str, dict | None]:
    """{key: meta or None} for `engine.validate.validate`."""
    return {k: i.meta for k, i in infos.items()}
