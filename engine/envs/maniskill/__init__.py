"""The real ManiSkill3 tasks (`maniskill:<TaskId>`, e.g. `maniskill:PickCube-v1`) behind `BatchedEnv`.

Every env runs with `obs_mode='state'` (42 floats for PickCube-v1), the controller `control_mode` names
and the task's registered `max_episode_steps` (50 for PickCube-v1). Through the config,
`control_mode = "auto"` (the default) resolves to the seed's `pd_joint_delta_pos` (8 actions in
[-1, 1], engine.config.schema.resolved_control_mode); `pd_ee_delta_pos` (4 actions) is only this
adapter's fallback when it is built directly without a controller.
`reward_mode='sparse'` is ManiSkill's sparse reward cast to float32 (1.0 on a success step);
`'dense'` is ManiSkill's `normalized_dense` reward (in [0, 1]). `success` is `info['success']`;
`terminated` is ManiSkill's terminated flag (success, or failure for tasks that define one) unless
`ignore_terminations`; `truncated` is set when the episode's elapsed steps reach
`max_episode_steps`. Autoreset and `final_obs` follow `engine/envs/base.py` exactly; autoresets are
done here, not by a gymnasium vector wrapper.

One module per job:

- `adapter`: `ManiSkillEnv`, the `BatchedEnv`: checks its arguments and hands every call to one of
  the two backends below.
- `cpu_pool` (`device='cpu'`, the path used and tested here): `CpuPool`, the envs split over
  worker processes (`split_envs`), each hosting several physx_cpu scenes.
- `protocol`: the worker protocol between a pool and the processes hosting its envs: the
  commands, the worker's serve loop, the handles that speak it (a subprocess or this process).
- `sim`: `Sim`, one physx_cpu env with this project's episode semantics and exact
  snapshot / restore (what a worker hosts).
- `gpu_batch` (`device='cuda'`): `GpuBatch`, all envs in ManiSkill's own batched physx_cuda env.
- `state`: `ManiSkillState`, the batch state snapshots carry (both backends).
- `tasks`: importing ManiSkill (with SAPIEN's headless stand-in where needed), its task registry
  (`check_task`, `registered_tasks`: one-line errors with the nearest names) and `gym.make`.

`from engine.envs.maniskill import ManiSkillEnv, ManiSkillState, check_task, split_envs` is what the
rest of the engine and the tests use.
"""
from __future__ import annotations

from .adapter import DEFAULT_CONTROL_MODE, ManiSkillEnv
from .cpu_pool import split_envs
from .state import ManiSkillState
from .tasks import check_task, registered_tasks

__all__ = ["DEFAULT_CONTROL_MODE", "ManiSkillEnv", "ManiSkillState", "check_task", "registered_tasks", "split_envs"]
