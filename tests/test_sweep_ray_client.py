"""`playground sweep --backend ray --address ray://HOST:PORT`: Ray's client mode, for real, on
loopback. The module starts its own Ray head (`ray start --head --block` with a Ray client server,
in its own temp dir and ports, every address 127.0.0.1, the environment the local instance uses)
and ends exactly that instance afterwards: its processes are found by their temp dir and ended
by pid (`ray stop` would end every Ray instance of the machine).

The launcher is a Ray client here: its runs reach the cluster over the client server, the
workers run on the head's node, and their records come back through the mailbox actor into the
launcher's runs directory. As on a real cluster, the head uses Ray's token authentication (a
token of its own, given to the client as RAY_AUTH_MODE=token and RAY_AUTH_TOKEN) and does not
see this checkout on its PYTHONPATH: the launcher ships its `engine` package (py_modules)."""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from engine.launcher.distributed.cluster import LOOPBACK, LOOPBACK_ENV

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("_sweep_ray_tests", Path(__file__).with_name("test_sweep_ray.py"))
_ray_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ray_tests)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _pids_of_instance(temp: str) -> list[int]:
    """Processes whose command line names this instance's temp dir (its raylet, GCS, workers...)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if temp in cmd:
            out.append(int(d))
    return out


def _end(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Head:
    def __init__(self, proc: subprocess.Popen, temp: str, client_port: int, auth: dict[str, str]):
        self.proc, self.temp, self.client_port, self.auth = proc, temp, client_port, auth
        self.address = f"ray://{LOOPBACK}:{client_port}"

    def playground(self, *args: str, env: dict[str, str], token: bool = True) -> subprocess.CompletedProcess:
        """`playground ARGS` in a fresh process, holding the head's token unless `token` is False,
        as a researcher runs it (Ray reads RAY_AUTH_MODE when it starts)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        return subprocess.run([sys.executable, "-c", "from engine.cli.app import main; main()", *args],
                              cwd=ROOT, env={**base, **env, **(self.auth if token else {})}, capture_output=True,
                              text=True, timeout=480)

    def client_server_logs(self, chars: int = 1500) -> str:
        """The tails of the head's Ray client server logs (the proxy and each session's server),
        for a failing assertion to show why a session did not start."""
        out = []
        for f in sorted(Path(self.temp).glob("session_*/logs/ray_client_server*")):
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def pids(self) -> set[int]:
        return _ray_tests._descendants(self.proc.pid) | set(_pids_of_instance(self.temp))


@pytest.fixture(scope="module")
def ray_head():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    # this interpreter's Ray (a venv that is not activated has its `ray` beside python, not on PATH):
    # a head on another Python refuses the client ("Version mismatch")
    beside = Path(sys.executable).with_name("ray")
    ray_cli = str(beside) if beside.exists() else shutil.which("ray")
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    gcs_port, client_port = _free_port(), _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **LOOPBACK_ENV, **auth}
    log = open(Path(temp) / "ray-start.log", "wb")
    proc = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address", LOOPBACK, "--port", str(gcs_port),
                             "--ray-client-server-port", str(client_port), "--include-dashboard", "false",
                             "--num-cpus", "2", "--object-store-memory", str(200 * 1024 * 1024), "--temp-dir", temp,
                             "--disable-usage-stats"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    head = Head(proc, temp, client_port, auth)
    try:
        end = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited {proc.returncode}: {(Path(temp) / 'ray-start.log').read_text()[-2000:]}")
            try:
                socket.create_connection((LOOPBACK, client_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError("the Ray client server did not open its port in 180 s")
                time.sleep(0.5)
        yield head
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # this instance only: `ray start --block` ends its processes on SIGTERM; stragglers by pid
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        end = time.monotonic() + 30
        while (left := _pids_of_instance(temp)) and time.monotonic() < end:
            _end(left, signal.SIGTERM)
            time.sleep(1)
        _end(_pids_of_instance(temp), signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_sweep_through_the_ray_client_streams_its_records_back(ray_head, tmp_path, monkeypatch):
    """2 seeds of a tiny run through `--address ray://127.0.0.1:PORT`: the records (status, metrics,
    logs, checkpoints) arrive in the launcher's runs directory, the results table matches them,
    and every established connection of the instance's processes and of this client stays on
    loopback."""
    runs = tmp_path / "runs"
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)
    env = {"PLAYGROUND_RUNS_DIR": str(runs), "PLAYGROUND_RAY_SCRATCH": str(tmp_path / "scratch")}
    seen: list = []
    launcher: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            mine = _ray_tests._descendants(os.getpid()) - {os.getpid()}  # the launcher process
            launcher.extend(mine)
            seen.extend(_ray_tests.established_of(ray_head.pids() | mine))
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        p = ray_head.playground("sweep", *_ray_tests.tiny(3), "--seeds", "0-1", "--parallel", "2", "--backend", "ray",
                                "--address", ray_head.address, "--json", env=env)
    finally:
        stop.set()
        t.join()
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:], ray_head.client_server_logs())
    out = json.loads(p.stdout)
    assert "ray: cluster at ray://" in p.stderr, p.stderr
    names = {n for _, n, _ in seen}
    assert {"gcs_server", "raylet"} <= names, names
    outside = [c for c in seen if not _ray_tests._peer_is_loopback(c[2])]
    assert not outside, outside[:5]
    assert any(pid in launcher for pid, _, _ in seen)  # the launcher talks to the cluster as a client

    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(dirs) == 2 and sorted(x["id"] for x in out["runs"]) == [d.name for d in dirs]
    (point,) = out["points"]
    assert point["n"] == point["n_done"] == 2 and sorted(point["runs"]) == [d.name for d in dirs]
    for d in dirs:
        info = _ray_tests.check_streamed_run(d, out)
        assert "py_modules" in info["engine_dir"]  # the node ran the code the launcher shipped


@pytest.mark.parametrize("token,says", [(True, "no GPUs"), (False, "RAY_AUTH_MODE=token")])
def test_refusals_through_the_client_are_one_line(ray_head, tmp_path, token, says):
    """A GPU request on a cluster without GPUs; a client without the cluster's token."""
    p = ray_head.playground("sweep", *_ray_tests.tiny(2), "--backend", "ray", "--address", ray_head.address,
                            *(["--gpus-per-run", "1"] if token else []), token=token,
                            env={"PLAYGROUND_RUNS_DIR": str(tmp_path / "runs")})
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2 and len(errs) == 1 and says in errs[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
