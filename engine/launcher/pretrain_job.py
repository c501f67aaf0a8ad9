"""Starting and finding pretraining jobs (engine.jobs.pretrain) from a front door.

- `start_pretrain(env_id, seed=, runs_dir=)` -> `RunProcess`: prepares the job directory and
  spawns `python -m engine pretrain --run-dir DIR` (the environment variable
  `PLAYGROUND_PRETRAIN_WORKER`, a shell-quoted command prefix, replaces
  `python -m engine pretrain`, as `PLAYGROUND_WORKER` does for runs). Follow it with
  `follow` / `RunWatcher` and `RunProgress`, stop it with `RunProcess.stop` or `stop_run`,
  exactly like a run.
- `check_device(device)`: the one-line refusal of a device this machine cannot give (cuda
  where torch sees no GPU), before anything is written.
- `active_pretrain(env_id, runs_dir)`: the job directory of a live pretraining of that env,
  so that a second front door follows it instead of starting another.
"""
from __future__ import annotations

import sys
from pathlib import Path

from engine import settings
from engine.jobs.pretrain import check_device, is_pretrain_job, prepare_job
from engine.records import TERMINAL, read_status

from .listing import is_run_dir, read_config
from .reconcile import is_alive
from .spawn import RunProcess, start_worker

PRETRAIN_PREFIX: list[str] = [sys.executable, "-m", "engine", "pretrain"]


def pretrain_cmd(run_dir: str | Path) -> list[str]:
    prefix = settings.get("PLAYGROUND_PRETRAIN_WORKER") or list(PRETRAIN_PREFIX)
    return prefix + ["--run-dir", str(run_dir)]


def start_pretrain(env_id: str, *, seed: int = 0, runs_dir: str | Path, command: str | None = None,
                   device: str = "cpu") -> RunProcess:
    """Prepare a pretraining job for `env_id` under `runs_dir` (on `device`: cpu, or cuda where
    torch sees a GPU, else UserError) and start it."""
    run_dir = prepare_job(env_id, seed=seed, runs_root=runs_dir, command=command, device=device)
    return start_worker(run_dir, worker_cmd=pretrain_cmd(run_dir))


def active_pretrain(env_id: str, runs_dir: str | Path) -> Path | None:
    """A pretraining job of `env_id` under `runs_dir` whose worker is alive, else None."""
    root = Path(runs_dir)
    if not root.is_dir():
        return None
    for p in sorted(root.iterdir(), reverse=True):
        if not p.name[:1].isdigit() or "-pretrain-" not in p.name or not is_run_dir(p):
            continue
        conf = read_config(p)
        if not is_pretrain_job(conf) or conf.get("env") != env_id:
            continue
        st = read_status(p) or {}
        if st.get("status") not in TERMINAL and is_alive(p, st):
            return p
    return None
