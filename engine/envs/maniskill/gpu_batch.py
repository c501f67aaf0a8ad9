"""The GPU backend (`device='cuda'`): `GpuBatch`, all `num_envs` in ManiSkill's own batched
physx_cuda env in this process, partial resets via `reset(options={'env_idx': ...})`,
snapshot/restore via `get_state_dict` / `set_state_dict` of the whole batch. UNTESTED on a GPU:
none was available where this was written, so it is kept small on purpose (the tests run its logic
on physx_cpu with one env). On the GPU backend, sub-scenes are reproducible within one run but not
bit-identical across runs, and autoreset randomness is ManiSkill's own (not captured by snapshots).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..base import StepResult
from .state import ManiSkillState, tree_map
from .tasks import episode_steps, gym_make, load_maniskill


class GpuBatch:
    """All envs in one physx_cuda ManiSkill env. UNTESTED on a GPU (written on a machine without one);
    the tests run this logic on physx_cpu with a single env (`sim_backend='physx_cpu'`)."""

    def __init__(self, task_id, num_envs, seed, reward_mode, control_mode, autoreset, ignore_terminations,
                 max_episode_steps, device, sim_backend: str = "physx_cuda"):
        gym, registered_steps = load_maniskill(task_id)
        self.env = gym_make(gym, task_id, num_envs, reward_mode, control_mode, sim_backend)
        self.u = self.env.unwrapped
        self.n = num_envs
        self.device = device
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.max_steps = episode_steps(task_id, max_episode_steps, registered_steps)
        self.act_dim = int(np.prod(self.u.single_action_space.shape))
        self.warmup_on_restore = True
        self.obs = self.reset(seed)
        self.obs_dim = int(self.obs.shape[1])

    def _flat(self, x, dtype) -> torch.Tensor:
        return torch.as_tensor(x).reshape(self.n).to(device=self.device, dtype=dtype)

    def reset(self, seed: int | None) -> torch.Tensor:
        seeds = None if seed is None else [int(seed) + i for i in range(self.n)]
        obs, _ = self.u.reset(seed=seeds)
        self.obs = obs.to(self.device, torch.float32).clone()
        return self.obs.clone()

    def step(self, action: torch.Tensor) -> StepResult:
        obs, reward, terminated, _, info = self.u.step(action)
        obs = obs.to(self.device, torch.float32)
        success = self._flat(info.get("success", torch.zeros(self.n, dtype=torch.bool)), torch.bool)
        terminated = self._flat(terminated, torch.bool)
        if self.ignore_terminations:
            terminated = torch.zeros_like(terminated)
        truncated = self._flat(self.u._elapsed_steps, torch.int64) >= self.max_steps
        final_obs = obs.clone()
        done = terminated | truncated
        if self.autoreset and bool(done.any()):
            idx = done.nonzero().squeeze(1).to(self.u.device)
            new_obs, _ = self.u.reset(options={"env_idx": idx})
            obs = obs.clone()
            obs[done] = new_obs.to(self.device, torch.float32)[done]
        self.obs = obs.clone()
        return StepResult(obs=obs, reward=self._flat(reward, torch.float32), terminated=terminated,
                          truncated=truncated, success=success, final_obs=final_obs)

    def snapshot(self, env_id: str) -> ManiSkillState:
        sim = tree_map(lambda t: t.clone(), self.u.get_state_dict())
        return ManiSkillState(env_id, sim, self.u._elapsed_steps.to(torch.int64).clone(), self.obs.clone(),
                              [None] * self.n)

    def _set(self, sim: dict, controller) -> None:
        self.u.set_state_dict(sim)
        if controller is not None:
            self.u.agent.set_controller_state(controller)

    def restore(self, state: ManiSkillState) -> torch.Tensor:
        """Set every env to the snapshot. As the seed's GPU re-rollouts do (`_restore_mc_state` in
        RL/mc_finetune_awr_parallel.py): set the state, take one zero-action step so that the GPU
        solver's contact data follows the new poses, then set the state again."""
        sim = tree_map(lambda t: t.to(self.u.device), state.sim)
        controller = sim.pop("controller", None)
        self._set(sim, controller)
        if self.warmup_on_restore:
            self.u.step(torch.zeros((self.n, self.act_dim), device=self.u.device))
            self._set(sim, controller)
        self.u._elapsed_steps[:] = state.elapsed.to(self.u._elapsed_steps.device, self.u._elapsed_steps.dtype)
        self.obs = state.obs.to(self.device, torch.float32).clone()
        return self.obs.clone()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.env.close()
