"""Preparing a run directory and spawning its worker.

- `prepare_run(cfg, findings, runs_dir=, name=)` makes `runs/<id>/` with `config.toml` (the
  fully resolved config), `findings.json` and `status.json` (`queued`).
- `start_worker(run_dir, resume=False, worker_cmd=None)` spawns the worker in its own session
  and process group, stdout and stderr appended to `run_dir/worker.out`, and returns a
  `RunProcess`. The launcher records what it spawned in `worker.json`.

The worker command is `WORKER_PREFIX + ["--run-dir", DIR] (+ ["--resume"])` where
`WORKER_PREFIX` is `[sys.executable, "-m", "engine"]`; the environment variable
`PLAYGROUND_WORKER` (a shell-quoted command prefix) replaces it, which is how tests and
debugging sessions substitute another worker.

Children are always reaped: `RunProcess.poll()`/`wait()`/`stop()` collect the exit status and
reconcile the run's status with it; a `RunProcess` used as a context manager stops its worker
when the block is left, unless `detach()` was called.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.config.schema import RunConfig
from engine.config.tomlio import write_flat
from engine.records import TERMINAL, RecordError, new_run_dir, now_iso, read_status, write_status

from .proc import terminate
from .reconcile import describe_exit, is_alive, reconcile, write_worker_info

WORKER_PREFIX: list[str] = [sys.executable, "-m", "engine"]


def worker_prefix() -> list[str]:
    env = os.environ.get("PLAYGROUND_WORKER")
    return shlex.split(env) if env else list(WORKER_PREFIX)


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
    from engine.checkpoints import CheckpointError, canonical_role, resolve_checkpoint
    from engine.config.schema import CHECKPOINT_KEYS

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
    """Make `runs_dir/<id>/` and write config.toml, findings.json and status.json (queued)."""
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
    except OSError as e:
        raise RecordError(f"cannot write run directory {run_dir} ({e.strerror or e})") from None
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

    # --- state ---------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _settle(self, rc: int) -> None:
        if not self._reconciled:
            self._reconciled = True
            try:
                if self.stop_requested:
                    _mark_stopped_if_unfinished(self.run_dir, rc)
                reconcile(self.run_dir, rc)
            except OSError:
                pass  # the run directory may be gone; the child is reaped all the same

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
        launcher does, saying why)."""
        if self.popen.poll() is not None:
            self._settle(self.popen.returncode)
            return self.popen.returncode
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


def _mark_stopped_if_unfinished(run_dir: Path, rc: int | None, why: str | None = None) -> None:
    """After a stop the launcher asked for: a worker that ended without a terminal status (it
    was killed before its SIGTERM handler was in place, or by SIGKILL) is recorded `stopped`."""
    st = read_status(run_dir)
    if st is None or st.get("status") in TERMINAL:
        return
    write_status(run_dir, "stopped", exit_code=rc, ended=now_iso(),
                 error=f"stopped by the launcher: {why or 'the worker ' + describe_exit(rc) + ' before it wrote a final status'}")


def start_worker(run_dir: str | Path, *, resume: bool = False, worker_cmd: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: str | Path | None = None) -> RunProcess:
    """Spawn the worker for `run_dir` in a new session (its own process group)."""
    run_dir = Path(run_dir)
    st = read_status(run_dir)
    if st is None:
        raise RecordError(f"{run_dir} is not a prepared run (no readable status.json)")
    if is_alive(run_dir, st) and st.get("status") not in TERMINAL:
        raise RecordError(f"run {run_dir.name} is already running (pid {st.get('pid')}): "
                          f"stop it first with `playground stop {run_dir.name}`")
    if resume:
        if not (run_dir / "config.toml").is_file():
            raise RecordError(f"{run_dir} has no config.toml to resume from")
        # back to queued, so that followers wait for the resumed worker's status
        write_status(run_dir, "queued", pid=None, ended=None, exit_code=None, error=None, resumed=now_iso())
    elif st.get("status") != "queued":
        raise RecordError(f"run {run_dir.name} is {st.get('status')}, not queued: resume it with "
                          f"`playground run --resume {run_dir.name}`")
    cmd = list(worker_cmd) if worker_cmd else default_worker_cmd(run_dir, resume)
    try:
        out = open(run_dir / "worker.out", "ab")
    except OSError as e:
        raise RecordError(f"cannot write {run_dir / 'worker.out'} ({e.strerror})") from None
    try:
        out.write(f"--- {now_iso()} launcher pid {os.getpid()}: {shlex.join(cmd)}\n".encode())
        out.flush()
        popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=env, cwd=cwd)
    except OSError as e:
        write_status(run_dir, "failed", error=f"cannot start the worker `{shlex.join(cmd)}`: {e.strerror or e}",
                     exit_code=None, ended=now_iso())
        raise RecordError(f"cannot start the worker `{shlex.join(cmd)}` ({e.strerror or e})") from None
    finally:
        out.close()
    write_worker_info(run_dir, {"pid": popen.pid, "pgid": popen.pid, "spawned": now_iso(),
                                "spawned_ts": time.time(), "host": socket.gethostname(), "launcher_pid": os.getpid(),
                                "cmd": cmd, "resume": resume})
    return RunProcess(popen, run_dir, cmd)
