"""Environment ids and the one error type of the env layer (no torch import: the validator uses it)."""
from __future__ import annotations

from ..errors import UserError

DEFAULT_ENV = "pickcube-lite"
KNOWN_ENVS = ("pickcube-lite", "maniskill:PickCube-v1")


class EnvError(UserError, ValueError):
    """A user-facing environment problem (unknown env id, missing dependency, bad size)."""


def check_env_id(env_id: str) -> None:
    """Raise EnvError with one clear line when the id names no environment we can build."""
    if env_id == "pickcube-lite":
        return
    if env_id.startswith("maniskill:") and len(env_id) > len("maniskill:"):
        return
    raise EnvError(
        f"unknown env id {env_id!r}: use 'pickcube-lite' or 'maniskill:<TaskId>' (e.g. 'maniskill:PickCube-v1')"
    )
