"""The one batched environment interface every task sits behind.

A `BatchedEnv` steps `num_envs` copies of a task at once with torch tensors in and out
(float32 observations/actions, on `env.device`), and can save and restore the state of the
whole batch. That snapshot is what Monte-Carlo re-rollouts stand on: an estimator snapshots the
states it visited, builds a (larger) rollout env of the same task, and restores
`state.select(index)` into it so that env j continues from visited state index[j].

Episode semantics (fixed for every implementation):
- `max_episode_steps` control steps per episode (50 for PickCube); `truncated` is set on the
  step that reaches it.
- `terminated` is set on the step where the task succeeds, unless the env was built with
  `ignore_terminations=True` (evaluation envs: every episode then lasts exactly
  `max_episode_steps`, as ManiSkill's eval envs do) in which case `terminated` stays False.
- With `autoreset=True` (training envs), an env whose episode ended (terminated or truncated)
  is reset inside the same `step` call: `obs` is then the first observation of the new
  episode and `final_obs` holds the real last observation of the ended episode. Where no
  episode ended, `final_obs` equals `obs`. With `autoreset=False`, ended envs are left as they
  are (stepping them further is the caller's business; MC branches simply mask them).
- `reward` is float32: with `reward_mode="sparse"` it is 1.0 on a success step else 0.0; with
  `reward_mode="dense"` a shaped reward in [0, 1] per step (normalised).
- `success` is the task's success flag at this step (before any autoreset), independent of
  `ignore_terminations`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import torch

from .ids import EnvError  # noqa: F401  (re-exported: implementations raise it)


@dataclass
class StepResult:
    obs: torch.Tensor         # [N, obs_dim] next observation (first obs of a new episode where autoreset happened)
    reward: torch.Tensor      # [N] float32
    terminated: torch.Tensor  # [N] bool: success ended the episode
    truncated: torch.Tensor   # [N] bool: time limit ended the episode
    success: torch.Tensor     # [N] bool: task success at this step
    final_obs: torch.Tensor   # [N, obs_dim] the real next state, before any reset

    @property
    def done(self) -> torch.Tensor:
        return self.terminated | self.truncated


class EnvState(ABC):
    """An opaque snapshot of a batch of env states (one entry per env)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def select(self, index: torch.Tensor | Sequence[int]) -> "EnvState":
        """A new state of len(index) entries: entry j is a copy of entry index[j]."""

    @classmethod
    @abstractmethod
    def cat(cls, states: Sequence["EnvState"]) -> "EnvState":
        """Concatenate snapshots along the batch dimension."""


class BatchedEnv(ABC):
    env_id: str
    num_envs: int
    obs_dim: int
    act_dim: int
    max_episode_steps: int
    device: torch.device
    reward_mode: str

    @abstractmethod
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every env; with a seed, the whole batch's randomness is re-seeded (deterministic)."""

    @abstractmethod
    def step(self, action: torch.Tensor) -> StepResult:
        """Advance every env one control step; actions are clipped to [-1, 1]."""

    @abstractmethod
    def snapshot(self) -> EnvState:
        """The full state of every env (elapsed steps included)."""

    @abstractmethod
    def restore(self, state: EnvState) -> torch.Tensor:
        """Put every env into the given state (len(state) must equal num_envs); returns obs."""

    def elapsed_steps(self) -> torch.Tensor:
        """[N] int64: control steps taken in each env's current episode."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
