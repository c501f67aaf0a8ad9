"""`Sim`: one physx_cpu ManiSkill env with this project's episode semantics (autoreset, flags,
`final_obs`, episode seeds) and exact snapshot / restore: what a CPU worker process hosts
(engine.envs.maniskill.protocol), or this process with `in_process=True`.

Snapshot / restore (CPU). A snapshot entry holds ManiSkill's `get_state_dict()` (actor and
articulation states, plus the controller state for `*_target_*` control modes), the elapsed
steps, the observation at that moment and the worker's episode-seed RNG state. PhysX keeps hidden
history that `set_state_dict` does not reset (measured: with the cube in the gripper, the result
of the next control step depends on the parity of the scene's sim-step count and on which
contacts happened earlier, by up to ~0.08 in the observation), so a state written into a scene
with a different past does not replay exactly. `restore()` therefore rebuilds the
worker's scene (ManiSkill's reconfigure, ~40 ms, done in parallel across workers) before
`set_state_dict`: every restored branch starts from an identical fresh scene, and the same
actions then give bit-identical observations, rewards and flags, whatever the envs did before
and in whichever worker the state lands (`rebuild_on_restore=False` skips the rebuild: restores
take ~1 ms instead of ~30-40 ms, but are exact only where the envs' pasts do not matter, e.g. no
contact with the cube). Consequences:
- `restore()` returns the observation stored in the snapshot (recomputing it on a fresh scene
  would read stale contact data, e.g. PickCube's `is_grasped`).
- The env that took a snapshot is not itself a restored branch: its own continuation may differ
  from the restored ones by solver noise. Restore right after snapshotting if it must match.
- Autoresets draw episode seeds from a per-worker RNG that is part of the snapshot, so episodes
  started after a restore are the same in every branch (and `select()` clones share them).
- `reset(seed)` also rebuilds the scenes, so a seeded reset is reproducible whatever came before.
  Env i's first episode after `reset(seed)` (or construction with `seed`) uses ManiSkill seed
  `seed + i`; later episodes use seeds drawn from `numpy.random.default_rng(seed + i)`.
- Task state that lives only in Python attributes (not in ManiSkill's state dict) is not
  captured. PickCube-v1 keeps all of its state (robot, cube, goal site) in the state dict; check
  other tasks before relying on restores there.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .state import tree_map
from .tasks import episode_steps, gym_make, load_maniskill, no_forced_gc


class Sim:
    """One physx_cpu ManiSkill env with this project's episode semantics (runs in a worker or in-process)."""

    def __init__(self, task_id: str, index: int, seed: int, reward_mode: str, control_mode: str,
                 autoreset: bool, ignore_terminations: bool, max_episode_steps: int | None):
        gym, registered_steps = load_maniskill(task_id)
        self.env = gym_make(gym, task_id, 1, reward_mode, control_mode, "physx_cpu")
        self.u = self.env.unwrapped
        self.index = index
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.max_steps = episode_steps(task_id, max_episode_steps, registered_steps)
        self.act_dim = int(np.prod(self.u.single_action_space.shape))
        self._seed(seed)
        self.obs = self._new_episode()
        self.obs_dim = int(self.obs.shape[0])

    # -- randomness: the first episode after seeding uses ManiSkill seed `s`, later ones draw from rng(s)
    def _seed(self, s: int) -> None:
        self.rng = np.random.default_rng(int(s))
        self.pending_seed: int | None = int(s)

    def _new_episode(self) -> np.ndarray:
        ep_seed = self.pending_seed if self.pending_seed is not None else int(self.rng.integers(2**31 - 1))
        self.pending_seed = None
        obs, _ = self.u.reset(seed=ep_seed)
        return self._np_obs(obs)

    @staticmethod
    def _np_obs(obs) -> np.ndarray:
        return np.asarray(obs[0].detach().cpu().numpy(), dtype=np.float32)

    def _rebuild(self) -> None:
        """A fresh PhysX scene (ManiSkill reconfigure): no history left to perturb the solver."""
        with no_forced_gc():
            self.u.reset(seed=0, options={"reconfigure": True})

    # -- commands
    def info(self) -> dict:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "max_steps": self.max_steps, "pid": os.getpid()}

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self._rebuild()
            self._seed(seed)
        self.obs = self._new_episode()
        return self.obs

    def step(self, action: np.ndarray):
        obs, reward, terminated, _, info = self.u.step(torch.as_tensor(action, dtype=torch.float32)[None])
        elapsed = int(self.u._elapsed_steps[0])
        success = bool(info["success"][0]) if "success" in info else False
        reward = float(torch.as_tensor(reward).reshape(-1)[0].float())
        terminated = bool(torch.as_tensor(terminated).reshape(-1)[0]) and not self.ignore_terminations
        truncated = elapsed >= self.max_steps
        final_obs = self._np_obs(obs)
        self.obs = final_obs
        if self.autoreset and (terminated or truncated):
            self.obs = self._new_episode()
        return self.obs, reward, terminated, truncated, success, final_obs

    def snapshot(self) -> dict:
        sim = tree_map(lambda t: t.detach().cpu().numpy().copy(), self.u.get_state_dict())
        return {"sim": sim, "elapsed": int(self.u._elapsed_steps[0]), "obs": self.obs.copy(),
                "rng": {"bitgen": self.rng.bit_generator.state, "pending": self.pending_seed}}

    def restore(self, entry: dict, rebuild: bool) -> np.ndarray:
        if rebuild:
            self._rebuild()
        sim = tree_map(lambda a: torch.as_tensor(np.asarray(a)), entry["sim"])
        controller = sim.pop("controller", None)
        self.u.set_state_dict(sim)
        if controller is not None:
            self.u.agent.set_controller_state(controller)
        self.u._elapsed_steps[:] = int(entry["elapsed"])
        rng = entry.get("rng")
        if rng is not None:
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = rng["bitgen"]
            self.pending_seed = rng["pending"]
        self.obs = np.asarray(entry["obs"], dtype=np.float32).copy()
        self.u._last_obs = torch.tensor(self.obs)[None]
        return self.obs

    def elapsed(self) -> int:
        return int(self.u._elapsed_steps[0])

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:  # noqa: BLE001
            pass
