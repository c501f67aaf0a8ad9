"""`ManiSkillEnv`: the `BatchedEnv` of a ManiSkill3 task. It checks its arguments, then hands every
call to its backend: the CPU pool (engine.envs.maniskill.cpu_pool; the process count defaults to
`engine.runtime.default_procs`) or, on `device='cuda'`, the GPU batch
(engine.envs.maniskill.gpu_batch). What the envs' observations, rewards and flags mean:
engine/envs/maniskill/__init__.py.
"""
from __future__ import annotations

import numpy as np
import torch

from ...runtime import default_procs
from ..base import BatchedEnv, EnvError, EnvState, StepResult
from .cpu_pool import CpuPool
from .gpu_batch import GpuBatch
from .state import ManiSkillState, tree_cat, tree_map
from .tasks import check_installed, check_task_in_parent

DEFAULT_CONTROL_MODE = "pd_ee_delta_pos"


class ManiSkillEnv(BatchedEnv):
    """A batch of `num_envs` copies of a ManiSkill3 task; see engine/envs/maniskill/__init__.py."""

    def __init__(self, task_id: str, num_envs: int = 1, *, seed: int = 0, reward_mode: str = "sparse",
                 autoreset: bool = True, ignore_terminations: bool = False, device: str = "cpu",
                 control_mode: str = DEFAULT_CONTROL_MODE, in_process: bool | None = None,
                 rebuild_on_restore: bool = True, max_episode_steps: int | None = None, procs: int | None = None):
        if num_envs < 1:
            raise EnvError(f"num_envs must be >= 1, got {num_envs}")
        if reward_mode not in ("sparse", "dense"):
            raise EnvError(f"reward_mode must be 'sparse' or 'dense', got {reward_mode!r}")
        self.task_id = task_id
        self.env_id = f"maniskill:{task_id}"
        self.num_envs = int(num_envs)
        self.reward_mode = reward_mode
        self.control_mode = control_mode
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.rebuild_on_restore = rebuild_on_restore
        self.device = torch.device(device)
        self._pool: CpuPool | None = None
        self._gpu: GpuBatch | None = None
        self.worker_pids: list[int] = []
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise EnvError(f"device {device!r} requested but torch sees no CUDA device; use device='cpu'")
            self._gpu = GpuBatch(task_id, self.num_envs, seed, reward_mode, control_mode, autoreset,
                                  ignore_terminations, max_episode_steps, self.device)
            self.obs_dim, self.act_dim, self.max_episode_steps = self._gpu.obs_dim, self._gpu.act_dim, self._gpu.max_steps
            return
        if self.device.type != "cpu":
            raise EnvError(f"unsupported device {device!r} for ManiSkill envs: use 'cpu' or 'cuda'")
        check_installed()
        check_task_in_parent(task_id)
        if in_process is None:
            in_process = self.num_envs == 1
        if procs is not None and not 1 <= int(procs) <= self.num_envs:
            raise EnvError(f"procs must be between 1 and num_envs ({self.num_envs}), got {procs}")
        self.procs = 1 if in_process else int(procs or default_procs(self.num_envs))
        self._pool = CpuPool(task_id, self.num_envs, seed, reward_mode, control_mode, autoreset,
                              ignore_terminations, max_episode_steps, in_process, self.procs)
        info = self._pool.info
        self.obs_dim, self.act_dim, self.max_episode_steps = info["obs_dim"], info["act_dim"], info["max_steps"]
        self.worker_pids = list(self._pool.pids)

    # ------------------------------------------------------------------ helpers
    def _live_pool(self) -> CpuPool:
        if self._pool is None or not self._pool.handles:
            raise EnvError(f"{self.env_id} env is closed")
        return self._pool

    def _t(self, x, dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype).to(self.device)

    # ------------------------------------------------------------------ BatchedEnv
    def reset(self, seed: int | None = None) -> torch.Tensor:
        if self._gpu is not None:
            return self._gpu.reset(seed)
        args = [(None if seed is None else int(seed) + i,) for i in range(self.num_envs)]
        return self._t(np.stack(self._live_pool().call("reset", args)), torch.float32)

    def step(self, action: torch.Tensor) -> StepResult:
        a = torch.as_tensor(action, dtype=torch.float32)
        if tuple(a.shape) != (self.num_envs, self.act_dim):
            raise EnvError(f"action must have shape ({self.num_envs}, {self.act_dim}), got {tuple(a.shape)}")
        a = a.clamp(-1.0, 1.0)
        if self._gpu is not None:
            return self._gpu.step(a.to(self.device))
        a_np = a.detach().cpu().numpy()
        outs = self._live_pool().call("step", [(a_np[i],) for i in range(self.num_envs)])
        obs, rew, term, trunc, succ, final = zip(*outs)
        return StepResult(obs=self._t(np.stack(obs), torch.float32), reward=self._t(rew, torch.float32),
                          terminated=self._t(term, torch.bool), truncated=self._t(trunc, torch.bool),
                          success=self._t(succ, torch.bool), final_obs=self._t(np.stack(final), torch.float32))

    def snapshot(self) -> ManiSkillState:
        if self._gpu is not None:
            return self._gpu.snapshot(self.env_id)
        entries = self._live_pool().call("snapshot")
        sim = tree_cat([tree_map(torch.from_numpy, e["sim"]) for e in entries])
        return ManiSkillState(self.env_id, sim, torch.tensor([e["elapsed"] for e in entries], dtype=torch.int64),
                              torch.from_numpy(np.stack([e["obs"] for e in entries])), [e["rng"] for e in entries])

    def restore(self, state: EnvState) -> torch.Tensor:
        if not isinstance(state, ManiSkillState):
            raise EnvError(f"cannot restore a {type(state).__name__} into {self.env_id}")
        if state.env_id != self.env_id:
            raise EnvError(f"cannot restore a state of {state.env_id} into {self.env_id}")
        if len(state) != self.num_envs:
            raise EnvError(f"state has {len(state)} envs but this env has num_envs={self.num_envs}")
        if self._gpu is not None:
            return self._gpu.restore(state)
        rows = [(state.row(j), self.rebuild_on_restore) for j in range(self.num_envs)]
        return self._t(np.stack(self._live_pool().call("restore", rows)), torch.float32)

    def elapsed_steps(self) -> torch.Tensor:
        if self._gpu is not None:
            return self._gpu.u._elapsed_steps.to(torch.int64).clone()
        return torch.tensor(self._live_pool().call("elapsed"), dtype=torch.int64)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._gpu is not None:
            self._gpu.close()
            self._gpu = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass
