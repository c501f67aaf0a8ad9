"""Importing ManiSkill and reading its task registry: `load_maniskill(task_id)` (SAPIEN's headless
stand-in installed where no rendering device exists), `check_task` / `registered_tasks` (is the
task known? asked in a short-lived subprocess, so a launcher never holds ManiSkill), the one-line
`EnvError` naming the nearest tasks, and `gym_make` (a task as this project builds it).

sapien, gymnasium and mani_skill are imported inside `load_maniskill`, not at module top: on this
2-core machine `import mani_skill.envs` took 3-10 s (10.0 s measured with time.perf_counter under load;
~450 MiB), `import sapien` 0.6 s and `import gymnasium` 0.5 s, and the launcher imports this module
to check a task id before anything runs; they are optional too (`pip install mani_skill==3.0.1`).
"""
from __future__ import annotations

import contextlib
import difflib
import importlib.util
import json
import subprocess
import sys
import warnings

from ..base import EnvError
from ..sapien_headless import ensure_headless_rendering

REGISTRY_TIMEOUT_S = 180.0     # reading the registry imports ManiSkill in a subprocess, like a worker's start


def check_installed() -> None:
    for mod, pin in (("mani_skill", "mani_skill==3.0.1"), ("sapien", "sapien==3.0.3")):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise EnvError(f"ManiSkill envs need {mod!r}, which is not installed: pip install {pin}")


def quiet_warnings() -> None:
    warnings.filterwarnings("ignore", message="Failed to find system libvulkan")
    warnings.filterwarnings("ignore", message=".*not in the task's list of supported robots.*")


def load_maniskill(task_id: str):
    """Import ManiSkill (with the headless stand-in where needed); returns (gym, max_episode_steps)."""
    check_installed()
    quiet_warnings()
    try:
        import sapien  # noqa: F401  (lazy: see the module docstring)
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"sapien cannot be imported ({type(e).__name__}: {e})") from None
    ensure_headless_rendering()
    try:
        import gymnasium as gym  # lazy: see the module docstring
        import mani_skill.envs  # noqa: F401  (registers the tasks)
        from mani_skill.utils.registration import REGISTERED_ENVS
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"mani_skill cannot be imported ({type(e).__name__}: {e})") from None
    ensure_headless_rendering()   # patch modules mani_skill imported by name
    if task_id not in REGISTERED_ENVS:
        raise unknown_task(task_id, REGISTERED_ENVS)
    return gym, REGISTERED_ENVS[task_id].max_episode_steps


def unknown_task(task_id: str, registered) -> EnvError:
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
                                 timeout=REGISTRY_TIMEOUT_S, stdin=subprocess.DEVNULL)
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
    check_installed()
    loaded = getattr(sys.modules.get("mani_skill.utils.registration"), "REGISTERED_ENVS", None)
    if loaded is not None and "mani_skill.envs" in sys.modules and task_id in loaded:
        return  # this process has the registry already
    known = registered_tasks()
    if known is not None and task_id not in known:
        raise unknown_task(task_id, known)


def check_task_in_parent(task_id: str) -> None:
    """Fail fast, before starting workers, when this process has already imported ManiSkill's registry."""
    if "mani_skill.envs" not in sys.modules:
        return   # importing it here would cost ~3 s and ~450 MiB: the workers check instead
    registration = sys.modules.get("mani_skill.utils.registration")
    registered = getattr(registration, "REGISTERED_ENVS", None)
    if registered is not None and task_id not in registered:
        raise unknown_task(task_id, registered)


@contextlib.contextmanager
def no_forced_gc():
    """ManiSkill's scene teardown calls gc.collect() (0.1-0.5 s in a process holding torch) to free GPU
    memory; for a CPU scene rebuild the automatic collector is enough."""
    import mani_skill.envs.sapien_env as sapien_env  # loaded already (a scene exists); lazy: see the docstring

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


def episode_steps(task_id: str, given: int | None, registered: int | None) -> int:
    """The episode length a task runs with: `max_episode_steps` when given, else the registered one."""
    steps = int(given or registered or 0)
    if steps <= 0:
        raise EnvError(f"ManiSkill task {task_id!r} has no registered max_episode_steps; pass max_episode_steps")
    return steps


def gym_make(gym, task_id, num_envs, reward_mode, control_mode, sim_backend):
    ms_reward = {"sparse": "sparse", "dense": "normalized_dense"}[reward_mode]
    try:
        return gym.make(task_id, num_envs=num_envs, obs_mode="state", control_mode=control_mode,
                        reward_mode=ms_reward, sim_backend=sim_backend, render_backend="none")
    except EnvError:
        raise
    except Exception as e:  # noqa: BLE001
        raise EnvError(f"cannot build ManiSkill task {task_id!r} ({type(e).__name__}: {e})") from None
