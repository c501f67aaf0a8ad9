"""Preparing a run directory and spawning its worker.

- `prepare_run(cfg, findings, runs_dir=, name=)` makes `runs/<id>/` with `config.toml` (the
  fully resolved config), `findings.json` and `status.json` (`queued`).
- `start_worker(run_dir, resume=False, worker_cmd=None)` takes the run directory's lock
  (engine.runlock; `RunBusy` names the live worker's pid when another holds it), spawns the
  worker in its own session and process group with the lock handed down, stdout and stderr
  appended to `run_dir/worker.out`, and returns a `RunProcess`. The launcher records what it
  spawned in `worker.json`. `check_resumable(run_dir)` refuses up front what a resumed worker would.

The worker command is `WORKER_PREFIX + ["--run-dir", DIR] (+ ["--resume"])` where
`WORKER_PREFIX` is `[sys.executable, "-m", "engine"]`; the environment variable
`PLAYGROUND_WORKER` (a shell-quoted command prefix) replaces it, which is how tests and
debugging sessions substitute another worker.

Children are always reaped: `RunProcess.poll()`/`wait()`/`stop()` collect the exit status and
reconcile the run's status with it (`final_status`, also when status.json cannot be written);
a `RunProcess` used as a context manager stops its worker when the block is left, unless
`detach()` was called. Stopping goes through `proc.terminate`; a worker whose status is already
terminal is closing and gets `CLOSING_WAIT_S` to exit on its own first.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine import settings
from engine.checkpoints import CheckpointError, canonical_role, load_resume_state, resolve_checkpoint
from engine.config.schema import CHECKPOINT_KEYS, RunConfig
from engine.config.tomlio import write_flat
from engine.records import TERMINAL, RecordError, new_run_dir, now_iso, read_status, write_status
from engine.runlock import LOCK_FD_ENV, release, try_lock

from .proc import clamp_grace, terminate
from .reconcile import (describe_exit, is_alive, read_worker_info, reconcile, save_status, worker_pid,
                        write_worker_info)

# how long a worker that has written its terminal status gets to finish closing before a stop
CLOSING_WAIT_S = 30.0

WORKER_PREFIX: list[str] = [sys.executable, "-m", "engine"]


def worker_prefix() -> list[str]:
    return settings.get("PLAYGROUND_WORKER") or list(WORKER_PREFIX)


def default_worker_cmd(run_dir: str | Path, resume: bool = False) -> list[str]:
    return worker_prefix() + ["--run-dir", str(run_dir)] + (["--resume"] if resume else [])


def run_name(cfg: RunConfig) -> str:
    """The suffix of a run id: the experiment name, else the preset, else estimator-update."""
    if cfg.exp_name:
        return cfg.exp_name
    if cfg.preset:
        return Path(cfg.preset).stem if cfg.preset.endswith(".toml") else cfg.preset
    return f"{cfg.regime}-{cfg.estimator}-{cfg.update}"


def resolved_checkpoint_paths(cfg: RunConfig) -> tuple[dict, dict]:
    """The config as a table with role / seed names replaced by the files they stand for (the
    run keeps working if the ladder is rebuilt later), and the specs as they were given."""
    table, specs = cfg.to_dict(), {}
    for key in CHECKPOINT_KEYS:
        spec = table[key]
        if canonical_role(spec) is None:
            continue
        try:
            table[key] = str(resolve_checkpoint(spec, cfg.env).path.resolve())
            specs[key] = spec
        except CheckpointError:
            pass  # unused by this config, or missing: the worker names it if it needs it
    return table, specs


def prepare_run(cfg: RunConfig, findings: list[dict], *, runs_dir: str | Path, name: str | None = None) -> Path:
    """Make `runs_dir/<id>/` and write config.toml, findings.json and status.json (queued); when
    any of them cannot be written the folder is removed again (RecordError). Unusable settings
    (environment variables) are refused first: a prepared run never waits for a worker that
    cannot start."""
    settings.check_all()
    table, specs = resolved_checkpoint_paths(cfg)
    run_dir = new_run_dir(runs_dir, name or run_name(cfg))
    header = f"run {run_dir.name}: fully resolved config (written by the launcher)"
    if specs:
        header += "\ncheckpoints as given: " + ", ".join(f"{k} = {v}" for k, v in specs.items())
    try:
        write_flat(run_dir / "config.toml", table, header=header)
        (run_dir / "findings.json").write_text(json.dumps(list(findings), indent=1))
        write_status(run_dir, "queued", pid=None, started=None, ended=None, exit_code=None, error=None,
                     created=now_iso())
    except (OSError, ValueError, TypeError) as e:  # ValueError: text that cannot be encoded
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-made stays behind
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise RecordError(f"cannot write run directory {run_dir} ({why}); nothing was kept") from None
    return run_dir


class RunProcess:
    """A worker this process spawned. Wraps the `subprocess.Popen` (`.popen`)."""

    def __init__(self, popen: subprocess.Popen, run_dir: Path, cmd: list[str]):
        self.popen = popen
        self.run_dir = Path(run_dir)
        self.cmd = cmd
        self.pid = popen.pid
        self.detached = False
        self.stop_requested = False
        self._reconciled = False
        # the run's status once the worker has ended, as reconciled (also when status.json
        # could not be written: see reconcile)
        self.final_status: dict | None = None

    # --- state ---------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _settle(self, rc: int) -> None:
        if self._reconciled:
            return
        self._reconciled = True
        st = None
        try:
            if self.stop_requested:
                st = _mark_stopped_if_unfinished(self.run_dir, rc)
            st = reconcile(self.run_dir, rc, pid=self.pid) or st
        except OSError:
            pass  # the run directory may be gone; the child is reaped all the same
        self.final_status = st

    def poll(self) -> int | None:
        """The exit code once the worker has ended (reaped, status reconciled), else None."""
        rc = self.popen.poll()
        if rc is not None:
            self._settle(rc)
        return rc

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to end (raises subprocess.TimeoutExpired after `timeout`)."""
        rc = self.popen.wait(timeout)
        self._settle(rc)
        return rc

    # --- stopping ------------------------------------------------------------------------
    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM the worker's process group, SIGKILL it after `grace_s`; reap; return the exit
        code. The run ends `stopped` (the worker writes it; if the worker could not, the
        launcher does, saying why).

        A worker whose status is already terminal is not stopped: it is closing (the
        experiment-log entry, TensorBoard's last flush), so it gets up to `CLOSING_WAIT_S` to
        exit on its own (none when `grace_s` is 0) before it is terminated."""
        if self.popen.poll() is not None:
            self._settle(self.popen.returncode)
            return self.popen.returncode
        grace_s = clamp_grace(grace_s)
        st = read_status(self.run_dir) or {}
        if st.get("status") in TERMINAL and st.get("pid") in (None, self.pid) and grace_s > 0:
            try:
                return self.wait(CLOSING_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
        self.stop_requested = True
        terminate(self.pid, grace_s, run_dir=self.run_dir, cmd=self.cmd, own_child=True)
        rc = self.popen.wait()
        if rc == -signal.SIGKILL:
            _mark_stopped_if_unfinished(
                self.run_dir, rc, f"did not stop within {grace_s:g}s of SIGTERM and was killed (SIGKILL); "
                                  "progress since its last save is lost")
        self._settle(rc)
        return rc

    def detach(self) -> None:
        """Leave the worker running on purpose (`--detach`): the context manager won't stop it."""
        self.detached = True

    def __enter__(self) -> "RunProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.detached:
            self.stop()

    def __repr__(self) -> str:
        return f"RunProcess(pid={self.pid}, run_dir={str(self.run_dir)!r}, returncode={self.returncode})"


def _mark_stopped_if_unfinished(run_dir: Path, rc: int | None, why: str | None = None) -> dict | None:
    """After a stop the launcher asked for: a worker that ended without a terminal status (it
    was killed before its SIGTERM handler was in place, or by SIGKILL) is recorded `stopped`."""
    st = read_status(run_dir)
    if st is None or st.get("status") in TERMINAL:
        return st
    return save_status(run_dir, st, True, "stopped", exit_code=rc, ended=now_iso(),
                       error=f"stopped by the launcher: {why or 'the worker ' + describe_exit(rc) + ' before it wrote a final status'}")


def check_resumable(run_dir: str | Path) -> None:
    """What a resumed worker would refuse, refused before anything is touched (UserError, one
    line): an unreadable or edited config.toml, no saved iteration, a damaged resume.pt."""
    # lazy: engine.worker (with engine.envs) adds 17-29 ms to every front's start (-X importtime); only a resume needs it
    from engine.worker import WorkerConfigError, read_run_config

    run_dir = Path(run_dir)
    try:
        read_run_config(run_dir)
    except WorkerConfigError as e:
        raise RecordError(f"cannot resume {run_dir.name}: {e}") from None
    resume_pt = run_dir / "checkpoints" / "resume.pt"
    if not resume_pt.is_file():
        raise RecordError(f"run {run_dir.name} saved no iteration yet, so there is nothing to resume: "
                          "start a new run instead")
    load_resume_state(resume_pt)


class RunBusy(RecordError):
    """The run directory already has a live worker (or a launcher starting one)."""


def _lock_run(run_dir: Path, wait_s: float = 2.0) -> int:
    """The run directory's lock (engine.runlock) for a new worker, or RunBusy naming the live
    worker's pid. Waits up to `wait_s` while the holder is not a live worker (a listing probes
    the lock for an instant)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            fd = try_lock(run_dir)
        except OSError as e:
            raise RecordError(f"cannot open run directory {run_dir} ({e.strerror or e})") from None
        if fd is not None:
            return fd
        pid, _ = worker_pid(run_dir)
        live = pid if pid is not None and is_alive(run_dir, lock=False) else None
        if live is not None or time.monotonic() >= end:
            info = read_worker_info(run_dir) or {}
            who = (f"worker pid {live}" if live is not None else
                   f"its worker is being started by launcher pid {info.get('launcher_pid', '?')}")
            raise RunBusy(f"run {run_dir.name} is already running ({who}): follow it with `playground show "
                          f"{run_dir.name}` or stop it with `playground stop {run_dir.name}`")
        time.sleep(0.05)


def start_worker(run_dir: str | Path, *, resume: bool = False, worker_cmd: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: str | Path | None = None) -> RunProcess:
    """Spawn the worker for `run_dir` in a new session (its own process group).

    The run directory's lock is taken first and handed to the worker, which holds it for its
    life: a second start of the same run is refused (RunBusy) while the first worker lives, and
    a reconcile in between never sees the run without its worker."""
    run_dir = Path(run_dir)
    settings.check_all(env)
    if read_status(run_dir) is None:
        raise RecordError(f"{run_dir} is not a prepared run (no readable status.json)")
    fd = _lock_run(run_dir)
    try:
        return _spawn_locked(run_dir, fd, resume, worker_cmd, env, cwd)
    finally:
        release(fd)  # the worker holds its own copy of the lock from here on


def _spawn_locked(run_dir: Path, fd: int, resume: bool, worker_cmd: list[str] | None,
                  env: dict[str, str] | None, cwd: str | Path | None) -> RunProcess:
    st = read_status(run_dir) or {}
    if st.get("status") not in TERMINAL and is_alive(run_dir, st, lock=False):
        raise RunBusy(f"run {run_dir.name} is already running (pid {st.get('pid')}): "
                      f"stop it first with `playground stop {run_dir.name}`")
    if resume:
        if not (run_dir / "config.toml").is_file():
            raise RecordError(f"{run_dir} has no config.toml to resume from")
    elif st.get("status") != "queued":
        raise RecordError(f"run {run_dir.name} is {st.get('status')}, not queued: resume it with "
                          f"`playground run --resume {run_dir.name}`")
    cmd = list(worker_cmd) if worker_cmd else default_worker_cmd(run_dir, resume)
    child_env = dict(os.environ if env is None else env)
    child_env[LOCK_FD_ENV] = str(fd)
    try:
        if resume:
            # back to queued, so that followers wait for the resumed worker's status
            write_status(run_dir, "queued", pid=None, ended=None, exit_code=None, error=None, resumed=now_iso())
        out = open(run_dir / "worker.out", "ab")
    except OSError as e:
        raise RecordError(f"cannot write run directory {run_dir} ({e.strerror or e})") from None
    try:
        out.write(f"--- {now_iso()} launcher pid {os.getpid()}: {shlex.join(cmd)}\n".encode())
        out.flush()
        popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, pass_fds=(fd,), env=child_env, cwd=cwd)
    except OSError as e:
        save_status(run_dir, st, True, "failed", exit_code=None, ended=now_iso(),
                    error=f"cannot start the worker `{shlex.join(cmd)}`: {e.strerror or e}")
        raise RecordError(f"cannot start the worker `{shlex.join(cmd)}` ({e.strerror or e})") from None
    finally:
        out.close()
    proc = RunProcess(popen, run_dir, cmd)
    try:
        write_worker_info(run_dir, {"pid": popen.pid, "pgid": popen.pid, "spawned": now_iso(),
                                    "spawned_ts": time.time(), "host": socket.gethostname(),
                                    "launcher_pid": os.getpid(), "cmd": cmd, "resume": resume})
    except OSError as e:
        proc.stop(0)
        raise RecordError(f"cannot write {run_dir / 'worker.json'} ({e.strerror or e}): the worker was stopped") from None
    return proc
