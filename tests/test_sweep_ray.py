"""`playground sweep --backend ray` on a local Ray instance: tiny pickcube-lite runs with the real
worker, the records streamed back into the launcher's runs directory, every connection of every
Ray process on loopback, a killed worker retried (or failed with --max-retries 0), `stop` on a
Ray run, and the one-line refusals. One small Ray instance (2 CPUs, 200 MB object store, no
dashboard) is shared by the module; the sweeps reuse it.

The records' streaming (`engine.launcher.distributed.run_records`) is also tested without Ray.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.launcher.distributed.cluster import RayClusterError, local_init_kwargs, loopback_environment, parse_address
from engine.launcher.distributed.run_records import RecordStreamer, apply_ops, materialize, seed_files
from engine.launcher.proc import pid_alive
from engine.records import read_metrics, read_status
from engine.runlock import is_locked

ROOT = Path(__file__).resolve().parents[1]
NO_LADDER = ["--checkpoint", "none", "--critic_checkpoint", "none", "--optimal_checkpoint", "none",
             "--data_checkpoint", "none"]
TINY = ["gae-ppo", "--env", "pickcube-lite", *NO_LADDER, "--num_envs", "8", "--num_steps", "10",
        "--update_epochs", "1", "--num_minibatches", "2", "--num_eval_envs", "8", "--gamma", "0.99"]


# Runs that a test kills or stops mid-way must outlast the killer's or the stopper's reaction
# (records stream back with a lag, and `playground stop` is a fresh process): on a quiet machine
# a tiny iteration takes well under 0.1 s, and 12-15 iterations ended before the stop landed.
KILL_ITERS = 40
STOP_ITERS = 300  # long enough that `playground stop` (a fresh process: seconds on a loaded machine) lands mid-run


def tiny(iterations: int) -> list[str]:
    return [*TINY[:-2], "--total_timesteps", str(80 * iterations)]


@pytest.fixture(scope="module")
def ray_local():
    """One small local Ray instance on loopback for the module (the sweeps find it initialised)."""
    loopback_environment()
    import ray

    ray.init(**local_init_kwargs(num_cpus=2, object_store_bytes=200 * 1024 * 1024))
    yield ray
    ray.shutdown()


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PLAYGROUND_RAY_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    return tmp_path / "runs"


def sweep(*args: str):
    r = CliRunner().invoke(app, ["sweep", *args, "--backend", "ray", "--json"], catch_exceptions=False)
    out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else None
    return r, out


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir())


def check_streamed_run(d: Path, out: dict) -> dict:
    """A tiny 3-iteration Ray run's records arrived whole in the launcher's directory `d` and match
    the sweep's JSON summary of it; returns its worker.json."""
    st = read_status(d)
    assert st["status"] == "done" and st["exit_code"] == 0
    rows = read_metrics(d)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    summary = next(r for r in out["runs"] if r["id"] == d.name)
    assert summary["env_steps"] == rows[-1]["env_steps"] == 240 and summary["retries"] == 0
    assert summary["peak_sr"] == max(r["sr"] for r in rows)
    assert {"latest.pt", "resume.pt"} <= {p.name for p in (d / "checkpoints").iterdir()}
    assert "run done at iteration 3" in (d / "engine.log").read_text()
    info = json.loads((d / "worker.json").read_text())
    assert info["launcher"] == "ray" and not Path(info["private_run_dir"]).exists()  # the node's copy is cleaned up
    return info


# --- loopback ------------------------------------------------------------------------------

def _descendants(root: int) -> set[int]:
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                raw = Path(f"/proc/{d}/stat").read_text()
                parent[int(d)] = int(raw[raw.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = {root}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out.add(c)
                todo.append(c)
    return out


def _peer_is_loopback(peer: str) -> bool:
    host = peer.rsplit(":", 1)[0].strip("[]")
    if host.startswith("::ffff:"):
        host = host[len("::ffff:"):]
    return ipaddress.ip_address(host).is_loopback


def established_of(pids: set[int]) -> list[tuple[int, str, str]]:
    """(pid, process name, peer) of every established TCP connection of `pids` (`ss -tnp`)."""
    out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
    conns = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 6 or cols[0] != "ESTAB":
            continue
        for part in cols[5].split("),("):
            name = part.split('"')[1] if '"' in part else "?"
            if "pid=" in part:
                pid = int(part.split("pid=")[1].split(",")[0])
                if pid in pids:
                    conns.append((pid, name, cols[4]))
    return conns


def test_peer_parsing():
    assert _peer_is_loopback("[::ffff:127.0.0.1]:6390") and _peer_is_loopback("127.0.0.5:1")
    assert _peer_is_loopback("[::1]:80") and not _peer_is_loopback("[::ffff:192.0.2.2]:6390")
    assert not _peer_is_loopback("10.0.0.5:6379")


def test_sweep_of_four_runs_on_loopback_with_records_streamed_back(ray_local, runs, tmp_path):
    """2 seeds x 2 grid values; every established connection of a Ray process (all are children
    of this test process) has a loopback peer while the sweep runs; the table matches the run
    directories, which got status, metrics, logs and checkpoints without sharing a directory
    with the worker."""
    seen: list[tuple[int, str, str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.extend(established_of(_descendants(os.getpid())))
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        r, out = sweep(*tiny(3), "--seeds", "0-1", "--grid", "gamma=0.95,0.99", "--parallel", "2")
    finally:
        stop.set()
        t.join()
    assert r.exit_code == 0, r.output
    names = {n for _, n, _ in seen}
    assert {"gcs_server", "raylet"} <= names, names  # the check saw the Ray processes
    outside = [c for c in seen if not _peer_is_loopback(c[2])]
    assert not outside, outside[:5]

    dirs = run_dirs(runs)
    assert len(dirs) == 4
    assert sorted(r["id"] for r in out["runs"]) == [d.name for d in dirs]
    by_point = {p["label"]: p for p in out["points"]}
    assert set(by_point) == {"gamma=0.95", "gamma=0.99"}
    for d in dirs:
        info = check_streamed_run(d, out)
        assert Path(info["private_run_dir"]).is_relative_to(tmp_path / "scratch")
        cfg = json.dumps(read_status(d))
        assert "scratch" not in cfg
    assert not (tmp_path / "scratch").exists() or not any((tmp_path / "scratch").iterdir())
    for label, p in by_point.items():
        assert p["n"] == 2 and p["n_done"] == 2 and len(p["runs"]) == 2
    log = Path(os.environ["PLAYGROUND_EXPERIMENTS_LOG"]).read_text()
    assert all(f"`{d}`" in log for d in dirs)  # the experiment log names the launcher's directories


def _kill_when_saved(runs: Path, killed: list, what: str = "worker", min_iter: int = 2) -> None:
    """SIGKILL the first run's worker (or the Ray task's process that runs it) once it has
    saved iteration `min_iter`."""
    end = time.monotonic() + 240
    while time.monotonic() < end:
        for d in sorted(runs.iterdir()) if runs.is_dir() else []:
            st = read_status(d) or {}
            rows = read_metrics(d)
            if st.get("status") == "running" and rows and rows[-1]["iteration"] >= min_iter \
                    and (d / "checkpoints" / "resume.pt").is_file():
                info = json.loads((d / "worker.json").read_text())
                os.kill(st["pid"] if what == "worker" else info["task_pid"], signal.SIGKILL)
                killed.append((d.name, rows[-1]["iteration"], st["pid"]))
                return
        time.sleep(0.1)


@pytest.mark.parametrize("what,retries", [("worker", 1), ("worker", 0), ("ray-task", 1)])
def test_killed_worker_is_retried_from_its_save_or_fails(ray_local, runs, what, retries):
    """The engine worker (or the Ray worker process running its task, as when a node dies) is
    killed mid-run: the run is retried from its last save, or ends failed with --max-retries 0."""
    killed: list = []
    t = threading.Thread(target=_kill_when_saved, args=(runs, killed, what), daemon=True)
    t.start()
    r, out = sweep(*tiny(KILL_ITERS), "--seeds", "0-1", "--parallel", "2", "--max-retries", str(retries))
    t.join()
    assert killed, r.output
    name, at, worker_pid = killed[0]
    assert out is not None, r.output
    by_id = {x["id"]: x for x in out["runs"]}
    other = next(x for i, x in by_id.items() if i != name)
    assert other["status"] == "done" and other["retries"] == 0  # the rest never waits on it
    victim = by_id[name]
    if retries:
        assert r.exit_code == 0, r.output
        assert victim["status"] == "done" and victim["retries"] == 1
        assert ("SIGKILL" if what == "worker" else "Ray task died") in victim["retried_after"][0]
        assert not pid_alive(worker_pid)  # no orphaned worker goes on training
        iters = [row["iteration"] for row in read_metrics(runs / name)]
        assert iters == list(range(0, KILL_ITERS + 1))  # resumed from its save: no iteration twice, none missing
        assert "resumed" in (read_status(runs / name) or {})
        assert out["points"][0]["n_retried"] == 1
    else:
        assert r.exit_code == 1, r.output
        assert victim["status"] == "failed" and victim["retries"] == 0
        assert "SIGKILL" in read_status(runs / name)["error"]
        assert out["points"][0]["n_failed"] == 1


def test_stop_on_a_ray_run_ends_it_stopped_and_it_resumes(ray_local, runs):
    """`playground stop RUN` from another process cancels the run's Ray task; the worker saves
    and the run ends `stopped`; `playground run --resume RUN` finishes it."""
    stopped: list = []
    held: list = []

    def stop_one() -> None:
        end = time.monotonic() + 240
        while time.monotonic() < end and not stopped:
            for d in sorted(runs.iterdir()) if runs.is_dir() else []:
                if (read_status(d) or {}).get("status") == "running" and read_metrics(d):
                    held.append(is_locked(d))
                    p = subprocess.run([sys.executable, "-c", "from engine.cli.app import main; main()", "stop",
                                        d.name, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
                    stopped.append((d.name, p.returncode, p.stdout, p.stderr))
                    return
            time.sleep(0.1)

    t = threading.Thread(target=stop_one, daemon=True)
    t.start()
    r, out = sweep(*tiny(STOP_ITERS), "--seeds", "0")
    t.join()
    assert stopped, r.output
    assert held == [True]  # the sweep holds the run's lock while its task runs
    name, rc, so, se = stopped[0]
    assert rc == 0, se
    st = read_status(runs / name)
    assert st["status"] == "stopped" and json.loads(so)["status"]["status"] == "stopped"
    assert r.exit_code == 0 and out["runs"][0]["status"] == "stopped"
    assert not (runs / name / "stop.request").exists()
    saved = len(read_metrics(runs / name))
    assert 2 <= saved < STOP_ITERS + 1
    res = CliRunner().invoke(app, ["run", "--resume", name, "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert [row["iteration"] for row in read_metrics(runs / name)] == list(range(0, STOP_ITERS + 1))


def test_refusals_are_one_line_and_write_nothing(ray_local, runs):
    r, _ = sweep(*tiny(2), "--gpus-per-run", "1")
    assert r.exit_code == 2
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and "no GPUs" in errs[0] and "Traceback" not in r.output
    # --device cuda with GPUs asked of Ray: planned without asking this (CPU-only) launcher for CUDA
    r, _ = sweep(*tiny(2), "--gpus-per-run", "1", "--device", "cuda")
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errs) == 1 and "no GPUs" in errs[0], r.output
    r, _ = sweep(*tiny(2), "--cpus-per-run", "64")
    assert r.exit_code == 2 and "largest node" in r.stderr
    r, _ = sweep(*tiny(2), "--address", "not an address")
    assert r.exit_code == 2 and "HOST:PORT" in r.stderr
    r = CliRunner().invoke(app, ["sweep", *tiny(2), "--cpus-per-run", "2"], catch_exceptions=False)
    assert r.exit_code == 2 and "--backend ray" in r.stderr
    assert not runs.exists() or not any(runs.iterdir())


def test_an_address_where_nothing_answers_fails_in_seconds(runs):
    """(No Ray instance needed: the address is checked before Ray is asked to connect.)"""
    import socket

    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r, _ = sweep(*tiny(2), "--address", f"127.0.0.1:{port}")
    assert r.exit_code == 2 and time.monotonic() - t0 < 60
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and "nothing answers" in errs[0]
    assert not runs.exists() or not any(runs.iterdir())


def test_parse_address():
    assert parse_address("auto") == "auto" and parse_address(None) is None
    assert parse_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert parse_address("ray://head.example:10001") == "ray://head.example:10001"
    for bad in ("10.0.0.5", "http://x:1", "x:99999", "a b:1"):
        with pytest.raises(RayClusterError):
            parse_address(bad)


# --- streaming, without Ray ----------------------------------------------------------------

def test_records_round_trip_through_the_streamer(tmp_path):
    """A private copy seeded from the launcher's directory streams appends, replacements, a
    shrunken (resume-truncated) metrics file and the experiment-log entry back; checkpoint
    inputs named by absolute path travel under inputs/ and the config points at them."""
    launcher = tmp_path / "runs" / "r1"
    (launcher / "checkpoints").mkdir(parents=True)
    ladder = tmp_path / "ladder" / "start.pt"
    ladder.parent.mkdir()
    ladder.write_bytes(b"weights")
    (launcher / "config.toml").write_text(f'env = "pickcube-lite"\ncheckpoint = "{ladder}"\n')
    (launcher / "status.json").write_text('{"status": "queued"}')
    (launcher / "metrics.jsonl").write_text('{"iteration": 1}\n{"iteration": 2}\n')
    (launcher / "checkpoints" / "resume.pt").write_bytes(b"r2")
    files = seed_files(launcher)
    assert files["inputs/checkpoint-start.pt"] == b"weights"
    private = tmp_path / "node" / "r1.2"
    seeded = materialize(private, files)
    assert f'checkpoint = "{private}/inputs/checkpoint-start.pt"' in (private / "config.toml").read_text()
    s = RecordStreamer(private, seeded)
    assert s.changes() == []
    with open(private / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 3}\n')
    (private / "status.json").write_text('{"status": "running"}')
    (private / "engine.log").write_text("hello\n")
    apply_ops(launcher, s.changes())
    assert [r["iteration"] for r in read_metrics(launcher)] == [1, 2, 3]
    assert read_status(launcher)["status"] == "running" and (launcher / "engine.log").read_text() == "hello\n"
    (private / "metrics.jsonl").write_text('{"iteration": 1}\n')  # truncated to the last save
    (private / "checkpoints" / "resume.pt").write_bytes(b"r1")
    (private / "experiment-entry.md").write_text(f"# Experiment log\n\nheader\n\n## x (r1.2)\n- run directory: `{private}`\n")
    ops = s.changes(final=True)
    log = Path(os.environ["PLAYGROUND_EXPERIMENTS_LOG"])
    before = log.read_text() if log.exists() else ""
    apply_ops(launcher, ops)
    assert [r["iteration"] for r in read_metrics(launcher)] == [1]
    assert (launcher / "checkpoints" / "resume.pt").read_bytes() == b"r1"
    assert "ladder" in (launcher / "config.toml").read_text()  # the launcher's config is never overwritten
    added = log.read_text()[len(before):]
    assert added.rstrip().endswith(f"- run directory: `{launcher}`") and "\nheader" not in added
    assert s.changes(final=True) == []
    shutil.rmtree(private)


def test_a_batch_lost_in_flight_is_sent_again(tmp_path):
    """A Ray task cancelled while it ships a batch rewinds the streamer: the rows of that batch come
    back with the next one (the final ship), written at their offsets, so none is missing or doubled."""
    launcher, private = tmp_path / "runs" / "r1", tmp_path / "node" / "r1.1"
    launcher.mkdir(parents=True)
    (launcher / "config.toml").write_text('env = "pickcube-lite"\n')
    s = RecordStreamer(private, materialize(private, seed_files(launcher)))
    (private / "metrics.jsonl").write_text('{"iteration": 0}\n')
    apply_ops(launcher, s.changes())                     # the first batch arrives
    with open(private / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 1}\n{"iteration": 2}\n')
    mark = s.mark()
    lost = s.changes()                                   # computed, never delivered (cancelled)
    assert lost and s.changes() == []
    s.rewind(mark)
    with open(private / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 3}\n')
    final = s.changes(final=True)
    for delivered in ([final], [lost, final]):           # the batch in flight was lost, or it did arrive (first:
        shutil.rmtree(launcher)                          # one task's calls to the mailbox keep their order)
        launcher.mkdir()
        (launcher / "metrics.jsonl").write_text('{"iteration": 0}\n')
        for ops in delivered:
            apply_ops(launcher, ops)
        assert [r["iteration"] for r in read_metrics(launcher)] == [0, 1, 2, 3]


def test_resource_requests_against_the_nodes():
    """GPUs on a cluster without any, or more than one node has, are refused in one line;
    a request a node can meet passes (no Ray needed: the node list is given)."""
    from engine.launcher.distributed.cluster import RayConnection

    class FakeRay:
        def __init__(self, nodes):
            self._nodes = nodes

        def nodes(self):
            return self._nodes

    cpu_only = [{"Alive": True, "Resources": {"CPU": 8.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    conn = RayConnection(FakeRay(cpu_only), "head:6379", started_here=False)
    with pytest.raises(RayClusterError, match="no GPUs"):
        conn.check_request(1, 0.5)
    with pytest.raises(RayClusterError, match="largest node .* 8 CPUs"):
        conn.check_request(16, 0)
    conn.check_request(8, 0)
    gpus = cpu_only + [{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}}]
    conn = RayConnection(FakeRay(gpus), "head:6379", started_here=False)
    conn.check_request(4, 2)
    with pytest.raises(RayClusterError, match="at most 2"):
        conn.check_request(4, 4)
    assert conn.describe() == "cluster at head:6379: 2 nodes, 24 CPUs, 2 GPUs"


def test_scheduler_retries_a_dead_worker_also_on_the_local_backend(tmp_path, monkeypatch):
    """Retries are the scheduler's: a local worker that dies without a final status is started
    again (up to max_retries), then left `failed`; the run beside it is not held up."""
    import importlib.util

    from engine.config.schema import RunConfig
    from engine.launcher import prepare_run
    from engine.launcher.sweep import Job, Scheduler

    spec = importlib.util.spec_from_file_location("_launcher_tests", Path(__file__).with_name("test_launcher.py"))
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(fake.write_fake_worker(tmp_path)))
    jobs = []
    for seed, mode in ((0, "die"), (1, "normal")):
        def make(seed=seed, mode=mode):
            d = prepare_run(RunConfig(seed=seed), [], runs_dir=tmp_path / "runs", name=f"retry-s{seed}")
            fake.configure(d, mode=mode, iters=3, sleep=0.05)
            return d
        jobs.append(Job(point={}, seed=seed, prepare=make))
    sched = Scheduler(jobs, parallel=2, max_retries=1)
    end = time.monotonic() + 60
    while not sched.finished and time.monotonic() < end:
        sched.step()
        time.sleep(0.02)
    dead, fine = jobs
    assert fine.summary.status == "done" and fine.retries == 0
    assert dead.summary.status == "failed" and dead.retries == 1
    assert "exit code 3" in dead.failures[0]
    st = read_status(dead.run_dir)
    assert st["retries"] == 1 and "boom" in st["error"]  # the last attempt's log tail, as for any dead worker


def test_join_error_hints_token_auth_for_host_port_and_client(monkeypatch):
    """Measured: joining a head started with token auth fails as 'Failed to connect' (HOST:PORT)
    or as a timeout (ray://); both lines say how to pass the token, unless it is already set."""
    from engine.launcher.distributed.cluster import _join_error

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    for err in ("Failed to connect to Ray cluster at 127.0.0.1:6390", "ray client connection timeout"):
        msg = str(_join_error("127.0.0.1:6390", ConnectionError(err)))
        assert msg.startswith("--address 127.0.0.1:6390: cannot connect") and "RAY_AUTH_MODE=token" in msg
        assert "\n" not in msg
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert "RAY_AUTH_MODE" not in str(_join_error("x:1", ConnectionError("Failed to connect to Ray cluster at x:1")))
    assert "RAY_AUTH_MODE" not in str(_join_error("x:1", ValueError("bad address")))


class _FlakyRay:
    """Stands in for `ray` in `cluster._join`: `init` raises the given errors in turn, then returns."""

    def __init__(self, *errors: BaseException):
        self.errors, self.calls = list(errors), 0

    def init(self, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ctx"


_SERVER_FAILED = ConnectionAbortedError(
    "Initialization failure from server:\nTraceback (most recent call last):\n  File \"proxier.py\", line 770\n"
    "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for detailed logs.\n")


def test_a_client_session_the_head_could_not_start_is_retried_then_explained(monkeypatch, capsys):
    """Ray's client says "Initialization failure from server:" when the head could not start the
    session (e.g. its runtime-env agent not up yet): the join tries again, saying so on stderr, and
    when every try fails the one-line error carries the server's reason, not a bare colon. Any
    other failure (no cluster, bad token) is not retried."""
    from engine.launcher.distributed import cluster

    monkeypatch.setattr(cluster, "JOIN_RETRY_WAIT_S", 0.01)
    flaky = _FlakyRay(_SERVER_FAILED)
    assert cluster._join(flaky, "ray://127.0.0.1:1") == "ctx" and flaky.calls == 2
    err = capsys.readouterr().err
    assert "could not start this client's session" in err and "Starting Ray client server failed" in err

    always = _FlakyRay(*[_SERVER_FAILED] * cluster.JOIN_ATTEMPTS)
    with pytest.raises(cluster.RayClusterError) as e:
        cluster._join(always, "ray://127.0.0.1:1")
    assert always.calls == cluster.JOIN_ATTEMPTS
    msg = str(e.value)
    assert "\n" not in msg and "Initialization failure from server: RuntimeError: Starting Ray client server failed" in msg

    bare = str(cluster._join_error("ray://h:1", ConnectionAbortedError("Initialization failure from server:\n")))
    assert "no reason given" in bare and "ray_client_server" in bare
    mismatch = str(cluster._join_error("ray://h:1", RuntimeError(
        "Version mismatch: The cluster was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
        "This process on Ray Client was started with:\n    Ray: 2.60.0\n    Python: 3.12.1\n")))
    assert "\n" not in mismatch and "Python: 3.11.7 This process on Ray Client was started with:" in mismatch

    once = _FlakyRay(ConnectionError("ray client connection timeout"), _SERVER_FAILED)
    with pytest.raises(cluster.RayClusterError):
        cluster._join(once, "ray://127.0.0.1:1")
    assert once.calls == 1
