"""`ManiSkillState`: a batch of ManiSkill env states (what `snapshot()` returns and `restore()`
takes, on both backends), and the nested-dict helpers over ManiSkill's state dicts."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ..base import EnvError, EnvState


def tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def tree_cat(trees: Sequence[Any]):
    first = trees[0]
    if isinstance(first, dict):
        keys = list(first)
        for t in trees[1:]:
            if not isinstance(t, dict) or list(t) != keys:
                raise EnvError("cannot combine ManiSkill states with different layouts")
        return {k: tree_cat([t[k] for t in trees]) for k in keys}
    return torch.cat([torch.as_tensor(t) for t in trees], 0)


class ManiSkillState(EnvState):
    """A batch of ManiSkill env states; every tensor is [N, ...].

    `sim`: ManiSkill's state dict (nested dict of tensors, controller state included when the
    control mode has one); `elapsed`: int64 [N]; `obs`: float32 [N, obs_dim] observation at the
    snapshot; `rng`: per-env episode-seed RNG state (None entries on the GPU backend).
    """

    def __init__(self, env_id: str, sim: dict, elapsed: torch.Tensor, obs: torch.Tensor, rng: list):
        self.env_id = env_id
        self.sim = sim
        self.elapsed = elapsed
        self.obs = obs
        self.rng = list(rng)

    def __len__(self) -> int:
        return int(self.elapsed.shape[0])

    def select(self, index: torch.Tensor | Sequence[int]) -> "ManiSkillState":
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().squeeze(1)
        idx = idx.long().reshape(-1).cpu()
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise EnvError(f"state index out of range for a state of {n} envs")
        idx = idx % n if n else idx
        pick = lambda t: t.index_select(0, idx.to(t.device))  # noqa: E731
        return ManiSkillState(self.env_id, tree_map(pick, self.sim), pick(self.elapsed), pick(self.obs),
                              [self.rng[i] for i in idx.tolist()])

    @classmethod
    def cat(cls, states: Sequence["ManiSkillState"]) -> "ManiSkillState":
        states = list(states)
        if not states:
            raise EnvError("cannot concatenate an empty list of states")
        env_ids = {s.env_id for s in states}
        if len(env_ids) != 1:
            raise EnvError(f"cannot concatenate states of different envs: {sorted(env_ids)}")
        return cls(states[0].env_id, tree_cat([s.sim for s in states]),
                   torch.cat([s.elapsed for s in states]), torch.cat([s.obs for s in states]),
                   [r for s in states for r in s.rng])

    def row(self, j: int) -> dict:
        """Entry j as plain numpy (what a CPU worker receives)."""
        return {"sim": tree_map(lambda t: t[j:j + 1].detach().cpu().numpy(), self.sim),
                "elapsed": int(self.elapsed[j]), "obs": self.obs[j].detach().cpu().numpy(), "rng": self.rng[j]}
