"""The `Finding` a validator rule returns, and the small helpers rules share (no torch here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The seed's checkpoint names and the roles they stand for (engine.checkpoints loads torch
# only inside the functions that need it, so importing these names keeps `check` instant).
from engine.checkpoints import CRITIC_ROLES, POLICY_ROLES, ROLES, SEED_ALIASES  # noqa: F401

SEVERITIES = ("error", "warning")


@dataclass
class Finding:
    """One validator finding: `error` blocks a launch unless forced; `warning` is shown."""
    id: str
    severity: str
    title: str
    why: str
    fix: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "title": self.title, "why": self.why,
                "fix": dict(self.fix)}


def is_none(spec: str | None) -> bool:
    return (spec or "none").strip().lower() == "none"


def spec_role(spec: str | None) -> str | None:
    """The role a checkpoint value names by itself: role names, seed names (also as a file path
    such as runs/pickcube_ppo/ckpt_101.pt). None for other paths and 'none'."""
    if is_none(spec):
        return None
    s = spec.strip()
    if s in ROLES:
        return s
    if s in SEED_ALIASES:
        return SEED_ALIASES[s]
    p = Path(s)
    return SEED_ALIASES.get(p.name) or SEED_ALIASES.get(p.stem)


def meta_role(meta: dict | None) -> str | None:
    r = (meta or {}).get("role")
    return r if isinstance(r, str) and r in ROLES else None


def meta_float(meta: dict | None, key: str) -> float | None:
    v = (meta or {}).get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


