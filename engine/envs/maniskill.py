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
`max_episode_steps`. Autoreset and `final_obs` follow `base.py` exactly; autoresets are done here,
not by a gymnasium vector wrapper.

Two backends:

* CPU (`device='cpu'`, the path used and tested here): `sim_backend='physx_cpu'`,
  `render_backend='none'`. physx_cpu simulates one env per scene, and one process can hold
  several scenes: the envs are split into contiguous blocks over `procs` worker processes (by
  default one per usable core, `engine.runtime.default_procs`), each process stepping its
  envs one after the other, so 100 eval envs on 2 cores take 2 processes (~430 MiB each, plus
  ~2-3 MiB per further env) instead of 100 (`num_envs == 1` runs in this process unless
  `in_process=False`; `in_process=True` hosts every env here; the same `_Sim` code runs either
  way; `python -m engine.bench.maniskill_hosting` measures the layouts). Workers are plain `python` subprocesses talking over a socket pair (not
  gymnasium's AsyncVectorEnv, which builds a full dummy env in the parent, needs per-env
  `set_attr` tricks for restore, and cannot start from daemonic processes): they start in their own
  session (no stray Ctrl+C), ignore SIGINT, and exit when `close()` asks, when the socket reaches
  EOF or when their parent process is gone (checked every second), so a killed parent leaves no
  orphans. Each worker takes about 430 MiB and 3-5 s to start (importing torch and ManiSkill);
  a worker steps PickCube-v1 at about 200-250 steps/s on a 2-core machine (ManiSkill's own Python
  overhead dominates; this wrapper adds ~5%). Where SAPIEN finds no rendering device, every process installs the RenderMaterial
  stand-in of `sapien_headless.py` before building the task.

* GPU (`device='cuda'`): `sim_backend='physx_cuda'`, all `num_envs` in ManiSkill's own batched
  env in this process, partial resets via `reset(options={'env_idx': ...})`, snapshot/restore via
  `get_state_dict` / `set_state_dict` of the whole batch. UNTESTED: no GPU was available where
  this was written; it is kept small on purpose. On the GPU backend, sub-scenes are reproducible
  within one run but not bit-identical across runs, and autoreset randomness is ManiSkill's own
  (not captured by snapshots).

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

import contextlib
import difflib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
import weakref
from multiprocessing.connection import Connection
from typing import Any, Sequence

import numpy as np
import torch

from ..runtime import default_procs

from .base import BatchedEnv, EnvError, EnvState, StepResult

DEFAULT_CONTROL_MODE = "pd_ee_delta_pos"
_WORKER_START_TIMEOUT_S = 180.0
_WORKER_CLOSE_TIMEOUT_S = 10.0
_SYSPATH_ENV = "_PLAYGROUND_MS_WORKER_SYSPATH"


# ---------------------------------------------------------------------------- nested state trees
def _tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def _tree_cat(trees: Sequence[Any]):
    first = trees[0]
    if isinstance(first, dict):
        keys = list(first)
        for t in trees[1:]:
            if not isinstance(t, dict) or list(t) != keys:
                raise EnvError("cannot combine ManiSkill states with different layouts")
        return {k: _tree_cat([t[k] for t in trees]) for k in keys}
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
        return ManiSkillState(self.env_id, _tree_map(pick, self.sim), pick(self.elapsed), pick(self.obs),
                              [self.rng[i] for i in idx.tolist()])

    @classmethod
    def cat(cls, states: Sequence["ManiSkillState"]) -> "ManiSkillState":
        states = list(states)
        if not states:
            raise EnvError("cannot concatenate an empty list of states")
        env_ids = {s.env_id for s in states}
        if len(env_ids) != 1:
            raise EnvError(f"cannot concatenate states of different envs: {sorted(env_ids)}")
        return cls(states[0].env_id, _tree_cat([s.sim for s in states]),
                   torch.cat([s.elapsed for s in states]), torch.cat([s.obs for s in states]),
                   [r for s in states for r in s.rng])

    def row(self, j: int) -> dict:
        """Entry j as plain numpy (what a CPU worker receives)."""
        return {"sim": _tree_map(lambda t: t[j:j + 1].detach().cpu().numpy(), self.sim),
                "elapsed": int(self.elapsed[j]), "obs": self.obs[j].detach().cpu().numpy(), "rng": self.rng[j]}


# ---------------------------------------------------------------------------- ManiSkill import
def _check_installed() -> None:
    for mod, pin in (("mani_skill", "mani_skill==3.0.1"), ("sapien", "sapien==3.0.3")):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise EnvError(f"ManiSkill envs need {mod!r}, which is not installed: pip install {pin}")


def _quiet_warnings() -> None:
    warnings.filterwarnings("ignore", message="Failed to find system libvulkan")
    warnings.filterwarnings("ignore", message=".*not in the task's list of supported robots.*")


def _load_maniskill(task_id: str):
    """Import ManiSkill (with the headless stand-in where needed); returns (gym, max_episode_steps)."""
    _check_installed()
    _quiet_warnings()
    try:
        import sapien  # noqa: F401
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"sapien cannot be imported ({type(e).__name__}: {e})") from None
    from .sapien_headless import ensure_headless_rendering

    ensure_headless_rendering()
    try:
        import gymnasium as gym
        import mani_skill.envs  # noqa: F401  (registers the tasks)
        from mani_skill.utils.registration import REGISTERED_ENVS
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"mani_skill cannot be imported ({type(e).__name__}: {e})") from None
    ensure_headless_rendering()   # patch modules mani_skill imported by name
    if task_id not in REGISTERED_ENVS:
        raise _unknown_task(task_id, REGISTERED_ENVS)
    return gym, REGISTERED_ENVS[task_id].max_episode_steps


def _unknown_task(task_id: str, registered) -> EnvError:
    known = sorted(registered)
    close = difflib.get_close_matches(task_id, known, n=3)
    common = [t for t in ("PickCube-v1", "PushCube-v1", "StackCube-v1", "PegInsertionSide-v1") if t in known]
    shown = list(dict.fromkeys(close + common))
    return EnvError(f"unknown ManiSkill task {task_id!r}: known tasks include {', '.join(shown)}, ... "
                    f"({len(known)} in all)")


_REGISTRY_SCRIPT = ("import json, sys, warnings; warnings.simplefilter('ignore'); import mani_skill.envs; "
                    "from mani_skill.utils.registration import REGISTERED_ENVS; "
                    "sys.stdout.write(json.dumps(sorted(REGISTERED_ENVS)))")
_registry_cache: list[tuple[str, ...] | None] = []


def registered_tasks() -> tuple[str, ...] | None:
    """ManiSkill's registered task ids, read once per process in a short-lived subprocess (importing
    ManiSkill costs ~3 s and ~450 MiB that a launcher should not keep); None when it cannot tell."""
    if not _registry_cache:
        names = None
        try:
            out = subprocess.run([sys.executable, "-c", _REGISTRY_SCRIPT], capture_output=True, text=True,
                                 timeout=_WORKER_START_TIMEOUT_S, stdin=subprocess.DEVNULL)
            data = json.loads(out.stdout) if out.returncode == 0 else None
            if isinstance(data, list) and all(isinstance(x, str) for x in data):
                names = tuple(data)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
        _registry_cache.append(names)
    return _registry_cache[0]


def check_task(task_id: str) -> None:
    """EnvError (one line, with the nearest names) when ManiSkill is missing or has no such task:
    what `check` and `run` ask before anything is written, so the worker does not find out later."""
    _check_installed()
    loaded = getattr(sys.modules.get("mani_skill.utils.registration"), "REGISTERED_ENVS", None)
    if loaded is not None and "mani_skill.envs" in sys.modules and task_id in loaded:
        return  # this process has the registry already
    known = registered_tasks()
    if known is not None and task_id not in known:
        raise _unknown_task(task_id, known)


def _check_task_in_parent(task_id: str) -> None:
    """Fail fast, before starting workers, when this process has already imported ManiSkill's registry."""
    if "mani_skill.envs" not in sys.modules:
        return   # importing it here would cost ~3 s and ~450 MiB: the workers check instead
    registration = sys.modules.get("mani_skill.utils.registration")
    registered = getattr(registration, "REGISTERED_ENVS", None)
    if registered is not None and task_id not in registered:
        raise _unknown_task(task_id, registered)


@contextlib.contextmanager
def _no_forced_gc():
    """ManiSkill's scene teardown calls gc.collect() (0.1-0.5 s in a process holding torch) to free GPU
    memory; for a CPU scene rebuild the automatic collector is enough."""
    import mani_skill.envs.sapien_env as sapien_env

    class _NoCollect:
        @staticmethod
        def collect(*args, **kwargs):
            return 0

    saved = sapien_env.gc
    sapien_env.gc = _NoCollect
    try:
        yield
    finally:
        sapien_env.gc = saved


def _gym_make(gym, task_id, num_envs, reward_mode, control_mode, sim_backend):
    ms_reward = {"sparse": "sparse", "dense": "normalized_dense"}[reward_mode]
    try:
        return gym.make(task_id, num_envs=num_envs, obs_mode="state", control_mode=control_mode,
                        reward_mode=ms_reward, sim_backend=sim_backend, render_backend="none")
    except EnvError:
        raise
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"cannot build ManiSkill task {task_id!r} ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------- one CPU env
class _Sim:
    """One physx_cpu ManiSkill env with this project's episode semantics (runs in a worker or in-process)."""

    def __init__(self, task_id: str, index: int, seed: int, reward_mode: str, control_mode: str,
                 autoreset: bool, ignore_terminations: bool, max_episode_steps: int | None):
        gym, registered_steps = _load_maniskill(task_id)
        self.env = _gym_make(gym, task_id, 1, reward_mode, control_mode, "physx_cpu")
        self.u = self.env.unwrapped
        self.index = index
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.max_steps = int(max_episode_steps or registered_steps or 0)
        if self.max_steps <= 0:
            raise EnvError(f"ManiSkill task {task_id!r} has no registered max_episode_steps; pass max_episode_steps")
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
        with _no_forced_gc():
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
        sim = _tree_map(lambda t: t.detach().cpu().numpy().copy(), self.u.get_state_dict())
        return {"sim": sim, "elapsed": int(self.u._elapsed_steps[0]), "obs": self.obs.copy(),
                "rng": {"bitgen": self.rng.bit_generator.state, "pending": self.pending_seed}}

    def restore(self, entry: dict, rebuild: bool) -> np.ndarray:
        if rebuild:
            self._rebuild()
        sim = _tree_map(lambda a: torch.as_tensor(np.asarray(a)), entry["sim"])
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


_COMMANDS = ("info", "reset", "step", "snapshot", "restore", "elapsed")


class _Host:
    """Several `_Sim`s in one process (physx_cpu: one scene per env, any number of scenes per
    process). A command carries one argument tuple per hosted env and answers with one result
    per env, in order; the envs are stepped one after the other."""

    def __init__(self, cfgs: Sequence[dict]):
        self.sims: list[_Sim] = []
        try:
            for cfg in cfgs:
                self.sims.append(_Sim(**cfg))
        except BaseException:
            self.close()
            raise

    def run(self, cmd: str, per_sim_args: Sequence[tuple] | None) -> list:
        if cmd not in _COMMANDS:
            raise RuntimeError(f"unknown worker command {cmd!r}")
        args = per_sim_args if per_sim_args is not None else [()] * len(self.sims)
        return [getattr(sim, cmd)(*a) for sim, a in zip(self.sims, args)]

    def close(self) -> None:
        for sim in self.sims:
            sim.close()
        self.sims = []


# ---------------------------------------------------------------------------- worker process
def _worker_main(fd: int, parent_pid: int) -> None:
    """Entry point of a worker subprocess: build its `_Host` (one `_Sim` per env it hosts), then
    serve commands until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    host = None
    try:
        cfgs = conn.recv()
        try:
            torch.set_num_threads(1)
            host = _Host(cfgs)
        except EnvError as e:
            conn.send(("envError", str(e)))
            return
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))
            return
        conn.send(("ok", host.run("info", None)))
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return                      # parent gone (killed): do not linger
                continue
            cmd, args = conn.recv()             # EOFError when the parent's end is closed
            if cmd == "close":
                conn.send(("ok", None))
                return
            try:
                out = host.run(cmd, args)
            except EnvError as e:
                conn.send(("envError", str(e)))
                continue
            except Exception:  # noqa: BLE001
                conn.send(("error", traceback.format_exc()))
                continue
            conn.send(("ok", out))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        if host is not None:
            host.close()
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)   # skip the interpreter teardown of torch/sapien (seconds, and nothing to save)


_BOOTSTRAP = (
    "import json, os, sys; sys.path[:] = json.loads(os.environ.pop({var!r})); "
    "from engine.envs.maniskill import _worker_main; _worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class _ProcHandle:
    """One worker subprocess hosting the envs `cfgs` (their `index` fields)."""

    def __init__(self, index: int, cfgs: list[dict]):
        self.index = index
        self.size = len(cfgs)
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env[_SYSPATH_ENV] = json.dumps([p for p in sys.path if isinstance(p, str)])
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            stdout = sys.stderr.fileno()   # keep worker chatter off stdout (JSON output lives there)
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP.format(var=_SYSPATH_ENV), str(child_sock.fileno()), str(os.getpid())],
                pass_fds=(child_sock.fileno(),), env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                start_new_session=True, close_fds=True)
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.conn.send(cfgs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, cmd: str, per_env_args: list[tuple] | None = None) -> None:
        try:
            self.conn.send((cmd, per_env_args))
        except (OSError, EOFError):
            self._died()

    def recv(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.conn.poll(0.5):
            if self.proc.poll() is not None:
                self._died()
            if deadline is not None and time.monotonic() > deadline:
                raise EnvError(f"ManiSkill worker {self.index} did not answer within {timeout:.0f} s")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self._died()
        if status == "ok":
            return payload
        if status == "envError":
            raise EnvError(payload)
        raise RuntimeError(f"ManiSkill worker {self.index} failed:\n{payload}")

    def _died(self):
        rc = self.proc.poll()
        raise EnvError(f"ManiSkill worker {self.index} (pid {self.proc.pid}) exited unexpectedly"
                       + (f" with code {rc}" if rc is not None else ""))

    def request_close(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.poll() is None:
                self.conn.send(("close", ()))

    def close(self) -> None:
        self.request_close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=_WORKER_CLOSE_TIMEOUT_S)
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=_WORKER_CLOSE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self.conn.close()


class _LocalHandle:
    """The same protocol, served by a `_Host` in this process."""

    def __init__(self, index: int, cfgs: list[dict]):
        self.index = index
        self.size = len(cfgs)
        _quiet_warnings()
        self.host = _Host(cfgs)
        self._out: Any = None
        self._exc: BaseException | None = None

    @property
    def pid(self) -> int:
        return os.getpid()

    def send(self, cmd: str, per_env_args: list[tuple] | None = None) -> None:
        try:
            self._out, self._exc = self.host.run(cmd, per_env_args), None
        except BaseException as e:  # noqa: BLE001
            self._out, self._exc = None, e

    def recv(self, timeout: float | None = None):
        if self._exc is not None:
            exc, self._exc = self._exc, None
            raise exc
        return self._out

    def close(self) -> None:
        self.host.close()


def _close_handles(handles: list) -> None:
    for h in handles:          # ask every worker first, so they shut down in parallel
        if isinstance(h, _ProcHandle):
            h.request_close()
    for h in handles:
        with contextlib.suppress(Exception):
            h.close()
    handles.clear()


def split_envs(num_envs: int, procs: int) -> list[range]:
    """Env indices per process: contiguous blocks whose sizes differ by at most one."""
    base, extra = divmod(num_envs, procs)
    out, start = [], 0
    for p in range(procs):
        n = base + (p < extra)
        out.append(range(start, start + n))
        start += n
    return out


class _CpuPool:
    """N `_Sim`s stepped together, hosted by `procs` worker processes (or all in this process)."""

    def __init__(self, task_id: str, num_envs: int, seed: int, reward_mode: str, control_mode: str,
                 autoreset: bool, ignore_terminations: bool, max_episode_steps: int | None, in_process: bool,
                 procs: int = 1):
        self.handles: list = []
        self._finalizer = weakref.finalize(self, _close_handles, self.handles)
        cfgs = [dict(task_id=task_id, index=i, seed=int(seed) + i, reward_mode=reward_mode, control_mode=control_mode,
                     autoreset=autoreset, ignore_terminations=ignore_terminations,
                     max_episode_steps=max_episode_steps) for i in range(num_envs)]
        try:
            if in_process:
                self.handles.append(_LocalHandle(0, cfgs))
                self.handles[0].send("info")
                infos = [self.handles[0].recv()[0]]
            else:
                for i, block in enumerate(split_envs(num_envs, procs)):
                    self.handles.append(_ProcHandle(i, [cfgs[j] for j in block]))
                infos = [h.recv(timeout=_WORKER_START_TIMEOUT_S)[0] for h in self.handles]
        except BaseException:
            self.close()
            raise
        self.info = infos[0]
        self.pids = [i["pid"] for i in infos] if not in_process else []

    def call(self, cmd: str, per_env_args: Sequence[tuple] | None = None) -> list:
        """`cmd` on every env (one argument tuple per env); one result per env, in env order."""
        start = 0
        for h in self.handles:
            h.send(cmd, None if per_env_args is None else list(per_env_args[start:start + h.size]))
            start += h.size
        out, first_error = [], None
        for h in self.handles:       # drain every answer even if one failed, so the pipes stay in sync
            try:
                out.extend(h.recv())
            except EnvError as e:
                if "exited unexpectedly" in str(e):
                    raise
                first_error = first_error or e
            except RuntimeError as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return out

    def close(self) -> None:
        self._finalizer()


# ---------------------------------------------------------------------------- the BatchedEnv
class ManiSkillEnv(BatchedEnv):
    """A batch of `num_envs` copies of a ManiSkill3 task; see the module docstring."""

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
        self._pool: _CpuPool | None = None
        self._gpu: _GpuBatch | None = None
        self.worker_pids: list[int] = []
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise EnvError(f"device {device!r} requested but torch sees no CUDA device; use device='cpu'")
            self._gpu = _GpuBatch(task_id, self.num_envs, seed, reward_mode, control_mode, autoreset,
                                  ignore_terminations, max_episode_steps, self.device)
            self.obs_dim, self.act_dim, self.max_episode_steps = self._gpu.obs_dim, self._gpu.act_dim, self._gpu.max_steps
            return
        if self.device.type != "cpu":
            raise EnvError(f"unsupported device {device!r} for ManiSkill envs: use 'cpu' or 'cuda'")
        _check_installed()
        _check_task_in_parent(task_id)
        if in_process is None:
            in_process = self.num_envs == 1
        if procs is not None and not 1 <= int(procs) <= self.num_envs:
            raise EnvError(f"procs must be between 1 and num_envs ({self.num_envs}), got {procs}")
        self.procs = 1 if in_process else int(procs or default_procs(self.num_envs))
        self._pool = _CpuPool(task_id, self.num_envs, seed, reward_mode, control_mode, autoreset,
                              ignore_terminations, max_episode_steps, in_process, self.procs)
        info = self._pool.info
        self.obs_dim, self.act_dim, self.max_episode_steps = info["obs_dim"], info["act_dim"], info["max_steps"]
        self.worker_pids = list(self._pool.pids)

    # ------------------------------------------------------------------ helpers
    def _live_pool(self) -> _CpuPool:
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
        sim = _tree_cat([_tree_map(torch.from_numpy, e["sim"]) for e in entries])
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


# ---------------------------------------------------------------------------- GPU backend (UNTESTED)
class _GpuBatch:
    """All envs in one physx_cuda ManiSkill env. UNTESTED on a GPU (written on a machine without one);
    the tests run this logic on physx_cpu with a single env (`sim_backend='physx_cpu'`)."""

    def __init__(self, task_id, num_envs, seed, reward_mode, control_mode, autoreset, ignore_terminations,
                 max_episode_steps, device, sim_backend: str = "physx_cuda"):
        gym, registered_steps = _load_maniskill(task_id)
        self.env = _gym_make(gym, task_id, num_envs, reward_mode, control_mode, sim_backend)
        self.u = self.env.unwrapped
        self.n = num_envs
        self.device = device
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.max_steps = int(max_episode_steps or registered_steps or 0)
        if self.max_steps <= 0:
            raise EnvError(f"ManiSkill task {task_id!r} has no registered max_episode_steps; pass max_episode_steps")
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
        sim = _tree_map(lambda t: t.clone(), self.u.get_state_dict())
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
        sim = _tree_map(lambda t: t.to(self.u.device), state.sim)
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
