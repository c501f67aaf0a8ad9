"""The CPU backend (`device='cpu'`, `sim_backend='physx_cpu'`, `render_backend='none'`): `CpuPool`,
N `Sim`s stepped together, and `split_envs`, how they are spread over worker processes.

physx_cpu simulates one env per scene, and one process can hold several scenes: the envs are split
into contiguous blocks over `procs` worker processes (by default one per usable core,
`engine.runtime.default_procs`, passed in by `ManiSkillEnv`), each process stepping its envs one
after the other, so 100 eval envs on 2 cores take 2 processes (~430 MiB each, plus ~2-3 MiB per
further env) instead of 100 (`num_envs == 1` runs in this process unless `in_process=False`;
`in_process=True` hosts every env here; the same `Sim` code runs either way; `python -m
engine.bench.maniskill_hosting` measures the layouts). The processes and how the pool talks to
them: engine.envs.maniskill.protocol.
"""
from __future__ import annotations

import weakref
from typing import Sequence

from ..base import EnvError
from .protocol import WORKER_START_TIMEOUT_S, LocalHandle, ProcHandle, close_handles


def split_envs(num_envs: int, procs: int) -> list[range]:
    """Env indices per process: contiguous blocks whose sizes differ by at most one."""
    base, extra = divmod(num_envs, procs)
    out, start = [], 0
    for p in range(procs):
        n = base + (p < extra)
        out.append(range(start, start + n))
        start += n
    return out


class CpuPool:
    """N `Sim`s stepped together, hosted by `procs` worker processes (or all in this process)."""

    def __init__(self, task_id: str, num_envs: int, seed: int, reward_mode: str, control_mode: str,
                 autoreset: bool, ignore_terminations: bool, max_episode_steps: int | None, in_process: bool,
                 procs: int = 1):
        self.handles: list = []
        self._finalizer = weakref.finalize(self, close_handles, self.handles)
        cfgs = [dict(task_id=task_id, index=i, seed=int(seed) + i, reward_mode=reward_mode, control_mode=control_mode,
                     autoreset=autoreset, ignore_terminations=ignore_terminations,
                     max_episode_steps=max_episode_steps) for i in range(num_envs)]
        try:
            if in_process:
                self.handles.append(LocalHandle(0, cfgs))
                self.handles[0].send("info")
                infos = [self.handles[0].recv()[0]]
            else:
                for i, block in enumerate(split_envs(num_envs, procs)):
                    self.handles.append(ProcHandle(i, [cfgs[j] for j in block]))
                infos = [h.recv(timeout=WORKER_START_TIMEOUT_S)[0] for h in self.handles]
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
