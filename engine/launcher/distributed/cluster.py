"""Connecting the launcher to Ray: a local instance on loopback, or an existing cluster.

- `parse_address(text)`: `auto`, `HOST:PORT` or `ray://HOST:PORT` (anything else: `RayClusterError`).
- `loopback_environment()`: the settings that keep a local instance on 127.0.0.1. Ray 2.60 asks
  the kernel which interface routes to the outside and advertises that address for its GCS and
  raylets even when `_node_ip_address="127.0.0.1"` is given; with
  `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` it uses the loopback address (what it does on a laptop),
  so every process listens on and connects to 127.0.0.1. Usage statistics (which are sent to
  the internet) are switched off too.
- Ray's error messages to the driver go to stderr (Ray prints them to stdout, where `--json`
  output goes).
- `connect(address=None, dashboard=False, ...)` -> `RayConnection`: joins the cluster at
  `address` (first checked to answer, in seconds; one on loopback keeps Ray on loopback), or starts a local instance on loopback (dashboard off unless asked); an already
  initialised Ray (a test's shared instance) is reused and left running.
- `RayConnection.check_request(cpus, gpus)`: refuses, in one line, a per-run request that no
  node can ever satisfy (GPUs on a cluster without any, more CPUs than the largest node has).
- Joining a cluster (`--address`, including a `ray://` client) ships this launcher's `engine`
  package to it (`code_runtime_env`: Ray's `py_modules`), so the nodes run the launcher's code,
  not whatever version they have installed; they still need the project's dependencies
  (torch, ManiSkill, ...). `PLAYGROUND_RAY_SHIP_CODE=0` turns the shipping off.
- Token authentication: Ray 2.60 turns it on for a head started where a token exists
  (`~/.ray/auth_token`), and a driver or client joining an explicit address only sends a token
  when `RAY_AUTH_MODE=token` (the token from `RAY_AUTH_TOKEN` or the token file). A client
  that times out says so in its one-line error.
- A `ray://` client whose session the head could not start ("Initialization failure from
  server", e.g. a head that was just started and whose runtime-env agent does not answer yet,
  or a head too busy to start the session's server in Ray's 30 s) is retried
  (`JOIN_ATTEMPTS`, a stderr line each); the final error names the server's own reason.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import engine
from engine import settings

LOOPBACK = "127.0.0.1"
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # run records and checkpoints are small
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
SHIP_CODE_ENV = "PLAYGROUND_RAY_SHIP_CODE"

_ADDR = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


class RayClusterError(ValueError):
    """A Ray address or resource request that cannot work (one line)."""


def parse_address(text: str | None) -> str | None:
    """The address as given when it is `auto`, `HOST:PORT` or `ray://HOST:PORT`; None for none."""
    if text is None or text == "":
        return None
    text = text.strip()
    if text == "auto":
        return text
    m = _ADDR.match(text)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise RayClusterError(f"--address {text!r}: expected auto, HOST:PORT or ray://HOST:PORT "
                              "(e.g. --address 10.0.0.5:6379)")
    return text


def _host_port(address: str) -> tuple[str, int]:
    m = _ADDR.match(address)
    assert m is not None, address
    return m.group(2).strip("[]"), int(m.group(3))


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connection to HOST:PORT, so that a wrong address fails in seconds (Ray itself
    retries for minutes); an address on loopback also keeps Ray on loopback."""
    host, port = _host_port(address)
    if is_loopback_host(host):
        loopback_environment()  # else Ray swaps 127.0.0.1 for the machine's network address
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise RayClusterError(f"--address {address}: nothing answers at {host}:{port} ({e.strerror or e}); "
                              f"start the cluster there (`ray start --head --port {port}`) or fix the address") from None


def loopback_environment() -> None:
    """Set the environment (and Ray's constant, if Ray is already imported) so that a local
    instance advertises and uses 127.0.0.1 only; its processes inherit the environment."""
    os.environ.update(LOOPBACK_ENV)
    consts = sys.modules.get("ray._private.ray_constants")
    if consts is not None:
        consts.ENABLE_RAY_CLUSTER = False


def local_init_kwargs(dashboard: bool = False, num_cpus: int | None = None,
                      object_store_bytes: int = LOCAL_OBJECT_STORE_BYTES) -> dict[str, Any]:
    """`ray.init` arguments of a local instance on loopback (call `loopback_environment` first)."""
    kw: dict[str, Any] = dict(address="local", _node_ip_address=LOOPBACK, include_dashboard=dashboard,
                              dashboard_host=LOOPBACK, object_store_memory=object_store_bytes,
                              log_to_driver=False, logging_level=logging.WARNING)
    if num_cpus is not None:
        kw["num_cpus"] = num_cpus
    return kw


@dataclass
class RayConnection:
    ray: Any
    address: str | None                 # None: a local instance
    started_here: bool                  # this process started the Ray it uses (and shuts it down)
    dashboard_url: str | None = None
    nodes: list[dict] = field(default_factory=list)

    def refresh(self) -> None:
        self.nodes = [n for n in self.ray.nodes() if n.get("Alive")]

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for n in self.nodes:
            for k, v in (n.get("Resources") or {}).items():
                out[k] = out.get(k, 0.0) + float(v)
        return out

    def largest(self, key: str) -> float:
        return max((float((n.get("Resources") or {}).get(key, 0.0)) for n in self.nodes), default=0.0)

    def describe(self) -> str:
        t = self.totals()
        where = "local instance on 127.0.0.1" if self.address is None else f"cluster at {self.address}"
        return (f"{where}: {len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}, "
                f"{t.get('CPU', 0):g} CPUs, {t.get('GPU', 0):g} GPUs")

    def check_request(self, cpus: float, gpus: float) -> None:
        """Refuse a per-run request that no node can satisfy (it would wait forever)."""
        self.refresh()
        if gpus > 0 and self.largest("GPU") <= 0:
            raise RayClusterError(f"--gpus-per-run {gpus:g}: the Ray cluster ({self.describe()}) has no GPUs; "
                                  "drop --gpus-per-run or use --address to join a cluster with GPU nodes")
        if gpus > self.largest("GPU"):
            raise RayClusterError(f"--gpus-per-run {gpus:g}: the largest node has {self.largest('GPU'):g} GPUs; "
                                  f"ask for at most {self.largest('GPU'):g}")
        if cpus > self.largest("CPU"):
            raise RayClusterError(f"--cpus-per-run {cpus:g}: the largest node of the Ray cluster has "
                                  f"{self.largest('CPU'):g} CPUs; ask for at most {self.largest('CPU'):g}")

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()


def _ray_messages_to_stderr() -> None:
    """Ray 2.60's driver prints the cluster's error messages (a worker that died, ...) to stdout,
    which would break `--json` output there: send them to stderr."""
    w = sys.modules.get("ray._private.worker")
    orig = getattr(w, "print_to_stdstream", None)
    if orig is None or getattr(orig, "_to_stderr", False):
        return

    def to_stderr(data, ignore_prefix):
        return orig(dict(data, is_err=True), ignore_prefix)

    to_stderr._to_stderr = True  # type: ignore[attr-defined]
    w.print_to_stdstream = to_stderr


def code_runtime_env() -> dict[str, Any] | None:
    """The runtime env that ships this launcher's `engine` package to a cluster it joins (Ray adds
    it to the workers' PYTHONPATH, which the engine worker they start inherits); None when
    `PLAYGROUND_RAY_SHIP_CODE=0`."""
    if not settings.get(SHIP_CODE_ENV):
        return None
    package = os.path.dirname(os.path.abspath(engine.__file__))
    return {"py_modules": [package], "excludes": ["__pycache__", "*.pyc"]}


JOIN_ATTEMPTS = 3  # a ray:// session the head could not start: tried this often in all
JOIN_RETRY_WAIT_S = 10.0  # before the 2nd try; doubled before each further one


def _reason(e: BaseException, limit: int = 400) -> str:
    """One line for a join failure. A message whose first line only introduces what follows
    ("Initialization failure from server:", "Version mismatch: The cluster was started with:")
    keeps what follows: of a server's traceback its last line (the exception), else every line
    joined (a version mismatch's both sides)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        rest = lines[1:]
        if any(ln.startswith("Traceback (most recent call last)") for ln in rest):
            rest = rest[-1:]
        first = " ".join([first, *rest])
    elif first.endswith(":"):
        first = f"{first} no reason given; see ray_client_server*.err in the head's session logs"
    return first if len(first) <= limit else first[:limit - 3] + "..."


def _join_error(address: str, e: BaseException) -> RayClusterError:
    first = _reason(e)
    hint = ""
    low = first.lower()
    if ("timeout" in low or "timed out" in low or "failed to connect" in low) \
            and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        hint = ("; if the cluster uses token authentication (Ray's default where a token exists), set "
                "RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN")
    return RayClusterError(f"--address {address}: cannot connect to a Ray cluster there ({first}){hint}")


def _join(ray: Any, address: str) -> Any:
    """`ray.init` on a cluster, retrying a client session the head could not start (a
    `ConnectionAbortedError` from Ray's client: the server answered, so the address and token are
    right, and the failure is on the head's side and often passing); anything else at once."""
    wait, attempt = JOIN_RETRY_WAIT_S, 1
    while True:
        try:
            return ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                            runtime_env=code_runtime_env())
        except ConnectionAbortedError as e:
            if attempt == JOIN_ATTEMPTS:
                raise _join_error(address, e) from None
            print(f"ray: {address}: the cluster could not start this client's session ({_reason(e)}); "
                  f"trying again in {wait:.0f} s ({attempt}/{JOIN_ATTEMPTS - 1})", file=sys.stderr)
            time.sleep(wait)
            wait, attempt = wait * 2, attempt + 1
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise _join_error(address, e) from None


def connect(address: str | None = None, dashboard: bool = False, num_cpus: int | None = None) -> RayConnection:
    """Join the Ray cluster at `address`, or start a local instance on loopback."""
    settings.check_ray_tmpdir()  # else Ray fails deep inside with "AF_UNIX path length"
    address = parse_address(address)
    if address is None:
        loopback_environment()
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address != "auto":
            check_reachable(address)
    # lazy: Ray is an optional extra ([ray]) and takes 1.2 s to import here; parse_address, RayClusterError and
    # the loopback settings serve the launcher (and the tests) without it
    import ray

    if ray.is_initialized():
        conn = RayConnection(ray, address, started_here=False)
    else:
        if address is None:
            ctx = ray.init(**local_init_kwargs(dashboard, num_cpus))
        else:
            ctx = _join(ray, address)
        conn = RayConnection(ray, address, started_here=True,
                             dashboard_url=getattr(ctx, "dashboard_url", None) or None)
    _ray_messages_to_stderr()
    conn.refresh()
    return conn
