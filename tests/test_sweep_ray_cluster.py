"""`playground sweep --backend ray --address HOST:PORT` on a simulated two-node cluster
(`ray.cluster_utils.Cluster`, both nodes on loopback, one CPU each, the second with one logical
GPU): each node's worker writes only its own private directory, and the launcher's runs
directory still gets every status, metrics row, log line and checkpoint; a run asking for a GPU
lands on the GPU node with `device = cuda`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.launcher.distributed.cluster import LOOPBACK, loopback_environment
from engine.records import read_metrics, read_status

NO_LADDER = ["--checkpoint", "none", "--critic_checkpoint", "none", "--optimal_checkpoint", "none",
             "--data_checkpoint", "none"]
SMALL = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def two_nodes():
    loopback_environment()
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": SMALL,
                                                            "include_dashboard": False,
                                                            "node_ip_address": LOOPBACK})
    cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=SMALL, node_ip_address=LOOPBACK)  # a logical GPU
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_two_node_sweep_streams_every_record_to_the_launcher(two_nodes, tmp_path, monkeypatch):
    runs, scratch = tmp_path / "runs", tmp_path / "scratch"
    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(runs))
    monkeypatch.setenv("PLAYGROUND_RAY_SCRATCH", str(scratch))
    monkeypatch.setenv("PLAYGROUND_RAY_KEEP_SCRATCH", "1")  # to compare the nodes' copies afterwards
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)
    r = CliRunner().invoke(app, ["sweep", "gae-ppo", "--env", "pickcube-lite", *NO_LADDER, "--num_envs", "8",
                                 "--num_steps", "10", "--total_timesteps", "240", "--update_epochs", "1",
                                 "--num_minibatches", "2", "--num_eval_envs", "8", "--seeds", "0-1",
                                 "--grid", "gamma=0.95,0.99", "--parallel", "2", "--backend", "ray",
                                 "--address", two_nodes.address, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    assert sorted(x["id"] for x in out["runs"]) == [d.name for d in dirs] and len(dirs) == 4
    nodes = set()
    for d in dirs:
        info = json.loads((d / "worker.json").read_text())
        private = Path(info["private_run_dir"])
        nodes.add(info["node_id"])
        assert private.parent == scratch / info["node_id"][:12]  # the node's own directory
        assert read_status(d)["status"] == "done" == read_status(private)["status"]
        assert read_metrics(d) == read_metrics(private) and [x["iteration"] for x in read_metrics(d)] == [0, 1, 2, 3]
        assert (d / "engine.log").read_text() == (private / "engine.log").read_text()
        for name in ("latest.pt", "resume.pt"):
            assert (d / "checkpoints" / name).read_bytes() == (private / "checkpoints" / name).read_bytes()
        assert not (private / "findings.json").is_symlink() and str(runs) not in (private / "config.toml").read_text()
    assert len(nodes) == 2, nodes  # both nodes ran workers


def test_a_gpu_run_lands_on_the_gpu_node_on_cuda(two_nodes, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(runs))
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)
    r = CliRunner().invoke(app, ["sweep", "gae-ppo", "--env", "pickcube-lite", *NO_LADDER, "--num_envs", "8",
                                 "--num_steps", "10", "--total_timesteps", "160", "--update_epochs", "1",
                                 "--num_minibatches", "2", "--num_eval_envs", "8", "--gamma", "0.99",
                                 "--backend", "ray", "--address", two_nodes.address, "--gpus-per-run", "1",
                                 "--json"], catch_exceptions=False)
    out = json.loads(r.stdout)
    (d,) = [p for p in runs.iterdir() if p.is_dir()]
    assert 'device = "cuda"' in (d / "config.toml").read_text()
    info = json.loads((d / "worker.json").read_text())
    (gpu_node,) = [n.node_id for n in two_nodes.worker_nodes]  # the node added with a GPU
    assert info["node_id"] == gpu_node
    assert info["cuda_visible_devices"] == "0"  # Ray gave the worker the node's GPU
    assert r.exit_code in (0, 1) and out["runs"][0]["retries"] == 0
    import torch

    if not torch.cuda.is_available():  # a logical GPU only: the worker refuses cuda in one line, before training
        st = read_status(d)
        assert st["status"] == "failed" and "no CUDA device" in st["error"] and "\n" not in st["error"]
        assert "Traceback" not in (d / "engine.log").read_text()
