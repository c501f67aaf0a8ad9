"""The worker protocol between a CPU pool (engine.envs.maniskill.cpu_pool) and the processes that
host its envs: both ends of it.

- Server side: `Host`, several `Sim`s in one process; a command (`COMMANDS`) carries one argument
  tuple per hosted env and answers with one result per env, in order. `worker_main` is a worker
  subprocess's serve loop: it receives the envs' configs, builds its `Host`, answers `("ok",
  result)`, `("envError", message)` or `("error", traceback)` per command, until `close`.
- Client side: `ProcHandle` (a worker subprocess) and `LocalHandle` (a `Host` in this process)
  speak the same `send(cmd, per_env_args)` / `recv()`; `close_handles` shuts a pool's down.

Workers are plain `python` subprocesses talking over a socket pair (not gymnasium's AsyncVectorEnv,
which builds a full dummy env in the parent, needs per-env `set_attr` tricks for restore, and
cannot start from daemonic processes): they start in their own session (no stray Ctrl+C), ignore
SIGINT, and exit when `close()` asks, when the socket reaches EOF or when their parent process is
gone (checked every second), so a killed parent leaves no orphans. Each worker takes about 430 MiB
and 3-5 s to start (importing torch and ManiSkill); a worker steps PickCube-v1 at about 200-250
steps/s on a 2-core machine (ManiSkill's own Python overhead dominates; this wrapper adds ~5%).
Where SAPIEN finds no rendering device, every process installs the RenderMaterial stand-in of
`engine/envs/sapien_headless.py` before building the task.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Sequence

import torch

from ..base import EnvError
from .sim import Sim
from .tasks import quiet_warnings

WORKER_START_TIMEOUT_S = 180.0
WORKER_CLOSE_TIMEOUT_S = 10.0
SYSPATH_ENV = "_PLAYGROUND_MS_WORKER_SYSPATH"
COMMANDS = ("info", "reset", "step", "snapshot", "restore", "elapsed")


class Host:
    """Several `Sim`s in one process (physx_cpu: one scene per env, any number of scenes per
    process). A command carries one argument tuple per hosted env and answers with one result
    per env, in order; the envs are stepped one after the other."""

    def __init__(self, cfgs: Sequence[dict]):
        self.sims: list[Sim] = []
        try:
            for cfg in cfgs:
                self.sims.append(Sim(**cfg))
        except BaseException:
            self.close()
            raise

    def run(self, cmd: str, per_sim_args: Sequence[tuple] | None) -> list:
        if cmd not in COMMANDS:
            raise RuntimeError(f"unknown worker command {cmd!r}")
        args = per_sim_args if per_sim_args is not None else [()] * len(self.sims)
        return [getattr(sim, cmd)(*a) for sim, a in zip(self.sims, args)]

    def close(self) -> None:
        for sim in self.sims:
            sim.close()
        self.sims = []


def worker_main(fd: int, parent_pid: int) -> None:
    """Entry point of a worker subprocess: build its `Host` (one `Sim` per env it hosts), then
    serve commands until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    host = None
    try:
        cfgs = conn.recv()
        try:
            torch.set_num_threads(1)
            host = Host(cfgs)
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


BOOTSTRAP = (
    "import json, os, sys; sys.path[:] = json.loads(os.environ.pop({var!r})); "
    "from engine.envs.maniskill.protocol import worker_main; worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class ProcHandle:
    """One worker subprocess hosting the envs `cfgs` (their `index` fields)."""

    def __init__(self, index: int, cfgs: list[dict]):
        self.index = index
        self.size = len(cfgs)
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env[SYSPATH_ENV] = json.dumps([p for p in sys.path if isinstance(p, str)])
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            stdout = sys.stderr.fileno()   # keep worker chatter off stdout (JSON output lives there)
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BOOTSTRAP.format(var=SYSPATH_ENV), str(child_sock.fileno()), str(os.getpid())],
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
            self.proc.wait(timeout=WORKER_CLOSE_TIMEOUT_S)
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=WORKER_CLOSE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self.conn.close()


class LocalHandle:
    """The same protocol, served by a `Host` in this process."""

    def __init__(self, index: int, cfgs: list[dict]):
        self.index = index
        self.size = len(cfgs)
        quiet_warnings()
        self.host = Host(cfgs)
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


def close_handles(handles: list) -> None:
    for h in handles:          # ask every worker first, so they shut down in parallel
        if isinstance(h, ProcHandle):
            h.request_close()
    for h in handles:
        with contextlib.suppress(Exception):
            h.close()
    handles.clear()
