"""The Ray backend of sweeps: each run's worker as a Ray task, its records streamed back.

`RayBackend(conn, cpus_per_run=1, gpus_per_run=0)` starts a run with `start(run_dir, resume)`:
a task (`run_on_node`) with those resources runs the engine worker on some node in a private
copy of the run directory (`run_records`), sends what changes to a `Mailbox` actor every
`STREAM_EVERY_S` and once more when the worker has exited, and returns the worker's exit code.
The launcher drains the mailbox on every scheduler step (`pump`) into its own run directory, so
nothing needs a filesystem shared with the nodes.

`RayHandle` is the launcher's view of one task (poll / request_stop / finish_stop, like a local
worker). While the task runs the launcher holds the run directory's lock (engine.runlock), so
listings see the run as live and no second worker can be started on it. Stopping cancels the task: the task SIGTERMs its worker, which saves and ends
`stopped`, and ships the records before it returns. A task whose Ray worker or node dies
leaves `died` set to the reason and the run `failed`; the scheduler may start it again.
"""
from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

# Ray is imported at the top here (1.2 s): this module is the Ray backend, loaded only when a sweep runs on
# Ray (engine.launcher loads `open_ray_backend` on first use, after the CLI checked that Ray is installed)
import ray

import engine
from engine import settings
from engine.records import TERMINAL, now_iso, read_status, write_status
from engine.runlock import release, try_lock

from ..proc import terminate
from ..reconcile import describe_exit, write_worker_info
from ..spawn import RunBusy, worker_prefix
from .cluster import RayClusterError, RayConnection, connect, parse_address
from .run_records import (EXPERIMENT_ENTRY, Mailbox, RecordStreamer, apply_ops, clear_stop_request, materialize,
                          seed_files, stop_requested)

STREAM_EVERY_S = 0.5
SCRATCH_ENV = "PLAYGROUND_RAY_SCRATCH"        # where nodes keep private run directories
KEEP_SCRATCH_ENV = "PLAYGROUND_RAY_KEEP_SCRATCH"
# what the launcher's environment passes on to the worker on the node
FORWARD_ENV = ("PLAYGROUND_THREADS", "PLAYGROUND_WORKER", "PLAYGROUND_DEBUG", "PLAYGROUND_SAPIEN_HEADLESS",
               SCRATCH_ENV, KEEP_SCRATCH_ENV)


def private_run_dir(run_name: str, attempt: int, node_id: str) -> Path:
    root = Path(settings.get(SCRATCH_ENV) or Path(os.environ.get("TMPDIR") or "/tmp") / "playground-ray")
    return root / node_id[:12] / f"{run_name}.{attempt}"


def _die_with_parent() -> None:
    """In the worker before exec: SIGTERM it when the Ray task's process dies (Linux), so that a
    crashed task leaves no worker training on alone."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _interruptible() -> None:
    """Let `ray.cancel` interrupt this task: it raises KeyboardInterrupt through SIGINT, which a Ray
    worker inherits as ignored when Ray was started from a background shell (`cmd &`, nohup), and
    then the cancel never arrives and a stopped run trains to the end."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_on_node(key: str, run_name: str, attempt: int, files: dict[str, bytes], resume: bool, env: dict[str, str],
                mailbox: Any, grace_s: float) -> int:
    """The Ray task: run the engine worker in a private run directory on this node, stream its
    records to `mailbox`, return its exit code. Cancelling the task stops the worker cleanly."""
    _interruptible()
    os.environ.update(env)
    node_id = ray.get_runtime_context().get_node_id()
    private = private_run_dir(run_name, attempt, node_id)
    if private.exists():
        shutil.rmtree(private)
    seeded = materialize(private, files)
    wenv = dict(os.environ, PLAYGROUND_EXPERIMENTS_LOG=str(private / EXPERIMENT_ENTRY))
    cmd = worker_prefix() + ["--run-dir", str(private)] + (["--resume"] if resume else [])
    with open(private / "worker.out", "ab") as out:
        out.write(f"--- {now_iso()} ray node {node_id[:12]} ({socket.gethostname()}), attempt {attempt}: "
                  f"{shlex.join(cmd)}\n".encode())
        out.flush()
        p = subprocess.Popen(cmd, cwd=os.getcwd(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env=wenv, preexec_fn=_die_with_parent)
    write_worker_info(private, {"pid": p.pid, "pgid": p.pid, "spawned": now_iso(), "spawned_ts": time.time(),
                                "host": socket.gethostname(), "launcher": "ray", "node_id": node_id, "task_pid": os.getpid(),
                                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                "private_run_dir": str(private), "attempt": attempt, "cmd": cmd, "resume": resume,
                                "engine_dir": os.path.dirname(os.path.abspath(engine.__file__))})
    streamer = RecordStreamer(private, seeded)

    def ship(final: dict | None = None) -> None:
        sent = streamer.mark()
        try:
            ray.get(mailbox.put.remote(key, streamer.changes(final=final is not None), final))
        except BaseException:
            # cancelled (or failed) while sending: the batch may be lost, so the next one carries it again
            # (else metrics rows of that batch never reach the launcher while a later resume.pt does)
            streamer.rewind(sent)
            raise

    cancelled = False
    try:
        while True:
            try:
                rc = p.wait(STREAM_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                ship()
    except BaseException:  # ray.cancel interrupts the task (KeyboardInterrupt / TaskCancelledError)
        cancelled = True
        terminate(p.pid, grace_s, run_dir=private, cmd=cmd, own_child=True)
        rc = p.wait()
    ship({"rc": rc, "cancelled": cancelled})
    if not settings.get(KEEP_SCRATCH_ENV):
        shutil.rmtree(private, ignore_errors=True)
        try:
            private.parent.rmdir()  # the node's directory, once no run of it is left
        except OSError:
            pass
    if cancelled:
        raise KeyboardInterrupt  # the task counts as cancelled
    return rc


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


class RayBackend:
    """Starts runs as Ray tasks on the connected cluster; drains their records on `pump()`."""
    name = "ray"

    def __init__(self, conn: RayConnection, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 grace_s: float = 10.0):
        ray = conn.ray
        self.conn, self.ray, self.grace_s = conn, ray, grace_s
        self.cpus, self.gpus = float(cpus_per_run), float(gpus_per_run)
        self.mailbox = ray.remote(num_cpus=0)(Mailbox).remote()
        self.task = ray.remote(run_on_node).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        self.handles: dict[str, RayHandle] = {}
        self.attempts: dict[str, int] = {}
        self._pump_lock = threading.Lock()  # drain + write in order (stop_all waits in threads)

    def start(self, run_dir: Path, resume: bool = False) -> "RayHandle":
        run_dir = Path(run_dir)
        attempt = self.attempts.get(run_dir.name, 0) + 1
        self.attempts[run_dir.name] = attempt
        key = f"{run_dir.name}#{attempt}"
        lock = try_lock(run_dir)  # held while the task runs: the run is live, no second worker starts
        if lock is None:
            raise RunBusy(f"run {run_dir.name} is already running: stop it first with `playground stop {run_dir.name}`")
        clear_stop_request(run_dir)
        if resume:
            write_status(run_dir, "queued", pid=None, ended=None, exit_code=None, error=None, resumed=now_iso())
        env = {k: os.environ[k] for k in FORWARD_ENV if k in os.environ}
        try:
            ref = self.task.remote(key, run_dir.name, attempt, seed_files(run_dir), resume, env, self.mailbox,
                                   self.grace_s)
        except BaseException:
            release(lock)
            raise
        h = RayHandle(self, ref, run_dir, key)
        h.lock = lock
        self.handles[key] = h
        return h

    def pump(self) -> None:
        """Write whatever the nodes have sent into the launcher's run directories."""
        with self._pump_lock:
            for key, batches in self.ray.get(self.mailbox.drain.remote()).items():
                h = self.handles.get(key)
                if h is None:
                    continue  # an attempt that was given up on
                h.seen = True
                for ops, final in batches:
                    apply_ops(h.run_dir, ops)
                    if final is not None:
                        h.final = final

    def describe(self) -> str:
        where = self.conn.describe()
        if self.conn.dashboard_url:
            where += f", dashboard http://{self.conn.dashboard_url}"
        return f"{where}; each run {self.cpus:g} CPU" + (f" + {self.gpus:g} GPU" if self.gpus else "")

    def close(self) -> None:
        """Drop the mailbox; shut Ray down when this process started it."""
        try:
            self.ray.kill(self.mailbox)
        except Exception:  # noqa: BLE001 - Ray may already be gone
            pass
        self.conn.close()


def open_ray_backend(address: str | None = None, *, dashboard: bool = False, cpus_per_run: float = 1.0,
                     gpus_per_run: float = 0.0, grace_s: float = 10.0) -> RayBackend:
    """Connect (a local instance on loopback when `address` is None), refuse a per-run request no
    node can meet (`RayClusterError`, one line), and return the backend."""
    if cpus_per_run < 0 or gpus_per_run < 0:
        raise RayClusterError("--cpus-per-run and --gpus-per-run must be >= 0")
    parse_address(address)
    conn = connect(address, dashboard=dashboard)
    try:
        conn.check_request(cpus_per_run, gpus_per_run)
    except RayClusterError:
        conn.close()
        raise
    return RayBackend(conn, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, grace_s=grace_s)


class RayHandle:
    """One run's Ray task as the scheduler sees it."""

    def __init__(self, backend: RayBackend, ref: Any, run_dir: Path, key: str):
        self.backend, self.ray, self.ref, self.run_dir, self.key = backend, backend.ray, ref, run_dir, key
        self.returncode: int | None = None
        self.final: dict | None = None       # the task's last report (exit code), once received
        self.died: str | None = None         # why the run ended without a final status (retryable)
        self.stop_at: float | None = None
        self.seen = False                    # the task has sent records (it runs on a node)
        self.lock: int | None = None         # the launcher's lock on the run directory

    def _settle(self, rc: int | None, error: BaseException | None) -> int:
        """The task is over and its records are in: fix the status up and remember the outcome."""
        st = read_status(self.run_dir) or {}
        if st.get("status") not in TERMINAL:
            if self.stop_at is not None:
                write_status(self.run_dir, "stopped", exit_code=rc, ended=now_iso(),
                             error="stopped by the launcher: the Ray task was cancelled before the worker "
                                   "wrote a final status")
            else:
                self.died = (f"the Ray task died ({_first_line(error)})" if error is not None else
                             f"the worker ended without a final status ({describe_exit(rc)})")
                write_status(self.run_dir, "failed", exit_code=rc, ended=now_iso(), error=self.died)
        self.backend.handles.pop(self.key, None)
        clear_stop_request(self.run_dir)
        release(self.lock)
        self.lock = None
        self.returncode = rc if rc is not None else -1
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self.stop_at is None and stop_requested(self.run_dir):
            self.request_stop()  # `playground stop RUN` from another process
        ready, _ = self.ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        rc, error = None, None
        try:
            rc = int(self.ray.get(self.ref))
        except BaseException as e:  # noqa: BLE001 - cancelled, or the worker / node died
            error = e
        self.backend.pump()
        if self.final is None and (error is None or self.stop_at is not None):
            # the task sent its last records before ending: wait for them a little (a cancelled
            # task may be reported as done before its handler has shipped them)
            waited = time.monotonic() - self.stop_at if self.stop_at is not None else 0.0
            if self.stop_at is None or waited < (self.backend.grace_s + 10 if self.seen else 3.0):
                return None
        if self.final is not None:
            rc = self.final.get("rc", rc)
        if self.stop_at is not None:
            error = None
        return self._settle(rc, error)

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self.backend.pump()
            rc = self.poll()
            if rc is not None:
                return rc
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"ray task of {self.run_dir.name} still running")
            time.sleep(0.2)

    def request_stop(self) -> None:
        if self.stop_at is None and self.returncode is None:
            self.stop_at = time.monotonic()
            self.ray.cancel(self.ref)

    def finish_stop(self, grace_s: float) -> int:
        self.request_stop()
        try:
            return self.wait(grace_s + 15)
        except TimeoutError:
            self.ray.cancel(self.ref, force=True)
            return self._settle(None, None)

    def stop(self, grace_s: float) -> int:
        self.request_stop()
        return self.finish_stop(grace_s)

