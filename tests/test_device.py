"""Device placement of the training loop (engine.train.device), for `device = cuda` runs.

No GPU exists where this was written and reviewed, so these tests run on the CPU and check what
can fail without one:

- every env the Finetuner (and pretraining) builds is handed the run's device, and every
  network and optimiser parameter is moved there (the Finetuner on the 'meta' device, with
  stand-in envs: a forgotten `.to(device)` or `device=` shows);
- the loops run end to end with every tensor factory call of engine/train and engine/algos
  that does not name its device sent to the meta device, as a forgotten `device=` would send
  it to the CPU on a GPU run; the run must finish with plain-number metrics and CPU-only files;
- statically: every tensor factory call in those modules names its device;
- a GPU asked of a machine (or a Ray cluster) without one is refused in one line.
"""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from typer.testing import CliRunner

from engine import checkpoints as ck
from engine.cli.app import app
from engine.config.schema import RunConfig
from engine.nets import Actor, Critic
from engine.records import read_status, write_status
from engine.train import evaluation as evaluation_mod
from engine.train import finetune as finetune_mod
from engine.train import pretrain as pretrain_mod
from engine.train.device import DeviceError, cpu_tree, make_generators, run_device
from engine.train.finetune import Finetuner

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
LOOP_DIRS = (ENGINE / "train", ENGINE / "algos")
_CTORS = _device_constructors()
FACTORIES = {f.__name__ for f in _CTORS} | {"Generator"}
META = torch.device("meta")


# --- statically: every factory call names its device ---------------------------------------

def factory_calls_without_device(source: str) -> list[tuple[int, str]]:
    """(line, name) of each `torch.<factory>(...)` call that passes no `device=`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch" \
                and node.func.attr in FACTORIES and not any(k.arg == "device" for k in node.keywords):
            out.append((node.lineno, node.func.attr))
    return out


def test_the_static_check_sees_a_bare_factory_call():
    src = "import torch\nx = torch.zeros(3)\ny = torch.zeros(3, device=d)\ng = torch.Generator()\nz = torch.zeros_like(x)\n"
    assert factory_calls_without_device(src) == [(2, "zeros"), (4, "Generator")]


def test_every_tensor_factory_call_in_the_training_loop_names_its_device():
    bad = [f"{p.relative_to(ROOT)}:{line} torch.{name}(...) without device="
           for d in LOOP_DIRS for p in sorted(d.glob("*.py"))
           for line, name in factory_calls_without_device(p.read_text())]
    assert not bad, "\n".join(bad)


# --- at run time: factory calls that forget the device land elsewhere -------------------------

class ForgottenDeviceElsewhere(TorchFunctionMode):
    """Tensor factory calls made directly by engine/train or engine/algos code without `device=`
    get device='meta' (what the CPU is to a CUDA run: not where the data is), and are recorded."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _CTORS and "device" not in kwargs:
            caller = sys._getframe(1)
            path = Path(caller.f_code.co_filename)
            if any(path.is_relative_to(d) for d in LOOP_DIRS):
                self.seen.append(f"{path.relative_to(ROOT)}:{caller.f_lineno} torch.{func.__name__}")
                kwargs["device"] = "meta"
        return func(*args, **kwargs)



def test_the_runtime_check_sends_a_forgotten_device_to_meta():
    from engine.algos import ppo

    with ForgottenDeviceElsewhere() as m:
        ok = ppo.minibatch_indices(10, 2, torch.Generator(device="cpu").manual_seed(0), device="cpu")
        code = compile("import torch\nx = torch.zeros(3)\n", str(ENGINE / "train" / "probe.py"), "exec")
        scope: dict = {}
        exec(code, scope)
    assert all(t.device.type == "cpu" for t in ok) and scope["x"].device == META
    assert m.seen == ["engine/train/probe.py:2 torch.zeros"]


NO_LADDER = dict(checkpoint="none", critic_checkpoint="none", optimal_checkpoint="none", data_checkpoint="none")
TINY = dict(env="pickcube-lite", num_envs=8, num_steps=10, num_eval_envs=4, update_epochs=2, num_minibatches=2,
            gamma=0.9, **NO_LADDER)
LOOPS = {
    "online gae ppo": dict(estimator="gae", update="ppo", total_timesteps=160, target_kl=0.01),
    "online mc awr, critic baseline": dict(estimator="mc", update="awr", total_timesteps=160, mc_samples=2,
                                           rollout_policy="current", mc_baseline="critic"),
    "online mc ppo, mc baseline, optimal policy": dict(estimator="mc", update="ppo", total_timesteps=80,
                                                       mc_samples=2, rollout_policy="optimal"),
    "offline iql awr, regressed advantages": dict(regime="offline", estimator="iql", update="awr", num_iterations=2,
                                                  iql_steps=30, regress_advantages=True),
    "online iql-v-gae ppo": dict(estimator="iql-v-gae", update="ppo", total_timesteps=80, iql_steps=30,
                                 warmup_iters=1),
}


def _tensors(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


@pytest.mark.parametrize("name", list(LOOPS))
def test_the_finetune_loop_makes_every_tensor_on_the_runs_device(name, tmp_path):
    cfg = RunConfig(**TINY, **LOOPS[name])
    rows: list[dict] = []
    with ForgottenDeviceElsewhere() as m:
        f = Finetuner(cfg, run_dir=tmp_path, on_row=rows.append, device="cpu")
        try:
            outcome = f.run()
        except Exception as e:  # noqa: BLE001 - report what went off the device
            pytest.fail(f"{type(e).__name__}: {e}; factory calls without device: {m.seen}")
        finally:
            f.close()
    assert outcome == "done" and m.seen == []
    assert [r["iteration"] for r in rows] == list(range(f.num_iterations + 1))
    for row in rows:  # metrics are plain numbers, never tensors
        assert all(v is None or type(v) in (int, float, bool, str) for v in row.values()), row
        assert math.isfinite(row["sr"]) and math.isfinite(row.get("loss", row.get("pg_loss", 0.0)))
    state = torch.load(tmp_path / "checkpoints" / "resume.pt", weights_only=True)  # (no map_location)
    assert all(t.device.type == "cpu" for t in _tensors(state)) and state["sample_gen"] is None
    again = Finetuner(cfg, run_dir=tmp_path, device="cpu")  # resumes from it
    try:
        again.load_resume(tmp_path / "checkpoints")
        assert again.iteration == f.num_iterations
        assert torch.equal(again.gen.get_state(), f.gen.get_state())
    finally:
        again.close()


def test_pretraining_makes_every_tensor_on_its_device(tmp_path):
    with ForgottenDeviceElsewhere() as m:
        try:
            index = pretrain_mod.run_pretrain("pickcube-lite", seed=0, root=tmp_path, device="cpu", num_envs=8,
                                              num_steps=10, total_timesteps=160, update_epochs=1, num_minibatches=2,
                                              num_eval_envs=4, critic_episodes=8, critic_epochs=1)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{type(e).__name__}: {e}; factory calls without device: {m.seen}")
    assert m.seen == []
    assert {"start", "optimal", "critic-optimal"} <= set(index["roles"]) and index["pretrain"]["device"] == "cpu"
    blob = torch.load(Path(index["dir"]) / "optimal.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in _tensors(blob))


# --- construction: envs get the device, networks are moved there -------------------------------

class StandInEnv:
    """What the Finetuner's constructor reads of an env, on any device (even 'meta')."""
    env_id, obs_dim, act_dim, max_episode_steps = "pickcube-lite", 21, 4, 50

    def __init__(self, num_envs: int, device):
        self.num_envs, self.device = num_envs, torch.device(device)

    def reset(self, seed=None):
        return torch.zeros(self.num_envs, self.obs_dim, device=self.device)

    def close(self):
        pass


@pytest.fixture
def stand_ins(monkeypatch):
    """make_env (as the Finetuner and the eval-env helper call it) records its keyword
    arguments and builds a stand-in env; make_generators records the device it is asked for."""
    calls: list[dict] = []
    gens: list = []

    def make_env(env_id, num_envs, **kw):
        calls.append(kw)
        return StandInEnv(num_envs, kw.get("device", "cpu"))

    def generators(seed, device):
        gens.append(device)
        return make_generators(seed, torch.device("cpu"))  # (no generator lives on 'meta')

    monkeypatch.setattr(finetune_mod, "make_env", make_env)
    monkeypatch.setattr(evaluation_mod, "make_env", make_env)
    monkeypatch.setattr(finetune_mod, "make_generators", generators)
    return calls, gens


def _policy_file(tmp_path: Path) -> str:
    path = tmp_path / "policy.pt"
    ck.save_checkpoint(path, env_id="pickcube-lite", role="test", actor=Actor(21, 4), critic=Critic(21))
    return str(path)


@pytest.mark.parametrize("kind", ["fresh gae ppo", "loaded offline mc awr"])
def test_every_env_and_network_of_the_finetuner_is_on_its_device(kind, stand_ins, tmp_path, monkeypatch):
    calls, gens = stand_ins
    if kind == "fresh gae ppo":
        cfg = RunConfig(**{**TINY, "estimator": "gae", "update": "ppo"})
    else:
        p = _policy_file(tmp_path)
        cfg = RunConfig(**{**TINY, "regime": "offline", "estimator": "mc", "update": "awr", "rollout_policy": "data",
                           "mc_baseline": "critic", "checkpoint": p, "critic_checkpoint": p, "data_checkpoint": p})
    f = Finetuner(cfg, device="meta")
    f._rollout_env(6)  # MC re-rollout envs are built when first needed
    assert f.device == META and gens == [META]
    assert len(calls) == 3 and all(c.get("device") == META for c in calls), calls
    assert [bool(c.get("ignore_terminations")) for c in calls] == [False, True, False]  # train, eval, rollout
    nets = [n for n in (f.actor, f.critic, f.rollout_actor) if n is not None]
    assert len(nets) == (2 if kind == "fresh gae ppo" else 3)
    assert all(p.device == META for n in nets for p in n.parameters())
    opts = [o for o in (f.opt, f.critic_opt) if o is not None]
    assert len(opts) == (1 if kind == "fresh gae ppo" else 2)
    assert all(p.device == META for o in opts for g in o.param_groups for p in g["params"])
    if kind != "fresh gae ppo":  # the offline data policy too
        seen = []

        class Collected(Exception):
            pass

        def collect(env, actor, obs, num_steps, **kw):
            seen.append({p.device for p in actor.parameters()} | {obs.device, kw["generator"].device})
            raise Collected

        monkeypatch.setattr(finetune_mod, "collect", collect)
        with pytest.raises(Collected):
            f._collect_dataset()
        # (the sampling generator is the stand-in's CPU one: make_generators is checked below)
        assert seen == [{META, torch.device("cpu")}]


def test_pretraining_hands_every_env_its_device(monkeypatch, tmp_path):
    calls: list = []
    real = pretrain_mod.make_env

    def make_env(env_id, num_envs, **kw):
        calls.append(kw.get("device", "(none)"))
        return real(env_id, num_envs, **kw)

    monkeypatch.setattr(pretrain_mod, "make_env", make_env)
    monkeypatch.setattr(evaluation_mod, "make_env", make_env)
    pretrain_mod.run_pretrain("pickcube-lite", seed=0, root=tmp_path, device="cpu", num_envs=4, num_steps=10,
                              total_timesteps=40, update_epochs=1, num_minibatches=1, num_eval_envs=2,
                              critic_episodes=4, critic_epochs=1)
    assert len(calls) == 4 and all(d == torch.device("cpu") for d in calls), calls  # train, eval, ladder eval, data


def test_the_maniskill_pretraining_sizes_follow_the_device_not_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, a CPU job asked for
    cpu = pretrain_mod.PretrainConfig.for_env("maniskill:PickCube-v1")
    gpu = pretrain_mod.PretrainConfig.for_env("maniskill:PickCube-v1", device="cuda")
    assert (cpu.device, cpu.num_envs) == ("cpu", 8)          # physx_cpu: ~250 steps/s per process
    assert (gpu.device, gpu.num_envs) == ("cuda", 256)       # physx_cuda: one batched env


def test_generators_and_saved_state():
    index, sample = make_generators(3, torch.device("cpu"))
    assert index is sample and index.device.type == "cpu"  # a CPU run draws what it drew before
    assert torch.equal(torch.randn(4, generator=index), torch.randn(4, generator=torch.Generator().manual_seed(3)))
    w = torch.nn.Parameter(torch.ones(2))
    out = cpu_tree({"a": [w * 2, (w, 1)], "b": "x"})
    assert not out["a"][0].requires_grad and out["a"][1][1] == 1 and out["b"] == "x"
    assert run_device("cpu") == torch.device("cpu")


# --- a GPU this machine cannot give: one line ---------------------------------------------------

@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without a GPU (it is one; the patch keeps the tests true on a GPU machine)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_the_finetuner_and_pretraining_refuse_cuda_without_a_gpu(no_cuda, tmp_path):
    with pytest.raises(DeviceError, match="torch sees no CUDA device") as e:
        Finetuner(RunConfig(**TINY, device="cuda"))
    assert "\n" not in str(e.value)
    with pytest.raises(DeviceError, match="torch sees no CUDA device"):
        pretrain_mod.run_pretrain("pickcube-lite", root=tmp_path, device="cuda")


def _one_error_line(r) -> str:
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errs) == 1 and "Traceback" not in r.output, r.output
    return errs[0]


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def _nothing_written(runs: Path) -> bool:
    return not runs.exists() or not any(runs.iterdir())


TINY_ARGS = ["gae-ppo", "--env", "pickcube-lite", "--checkpoint", "none", "--critic_checkpoint", "none",
             "--num_envs", "8", "--num_steps", "10", "--total_timesteps", "80", "--num_eval_envs", "4"]


@pytest.mark.parametrize("cmd", [["run", *TINY_ARGS, "--device", "cuda"],
                                 ["sweep", *TINY_ARGS, "--device", "cuda", "--seeds", "0-1"],
                                 ["pretrain", "--device", "cuda"]])
def test_cuda_on_a_machine_without_a_gpu_is_one_line(cmd, no_cuda, runs):
    r = CliRunner().invoke(app, cmd, catch_exceptions=False)
    assert "no CUDA device" in _one_error_line(r)
    assert _nothing_written(runs)


@pytest.mark.parametrize("extra,says", [(["--device", "cuda"], "add --gpus-per-run"),
                                        (["--device", "cpu", "--gpus-per-run", "1"], "drop --device cpu")])
def test_a_ray_device_that_contradicts_the_gpu_request_is_one_line(extra, says, runs):
    """Refused before any Ray instance is started or joined (the launcher's own CUDA is not asked)."""
    pytest.importorskip("ray")
    r = CliRunner().invoke(app, ["sweep", *TINY_ARGS, "--backend", "ray", *extra], catch_exceptions=False)
    assert says in _one_error_line(r)
    assert _nothing_written(runs)


def test_ray_gpu_placement_is_the_launchers():
    from engine.launcher import ray_device

    assert ray_device(["--gamma", "0.9"], None) == (["--gamma", "0.9"], None)
    assert ray_device(["--gamma", "0.9"], 0.5) == (["--gamma", "0.9"], "cuda")
    over, dev = ray_device(["--device", "cuda", "--gamma", "0.9"], 1)
    assert dev == "cuda" and over == {"gamma": "0.9"}  # planned without asking this machine for a GPU
    assert ray_device(["--device", "cpu"], 0) == (["--device", "cpu"], None)


def test_a_cuda_run_resumed_or_started_where_torch_sees_no_gpu_is_one_line(runs, tmp_path):
    """The worker refuses it before training (status failed, one line, no traceback), and so does
    `playground run --resume` before starting a worker. CUDA_VISIBLE_DEVICES="" hides any GPU."""
    from engine.launcher import prepare_run

    run = prepare_run(RunConfig(**TINY, device="cuda"), [], runs_dir=runs, name="gpu-run")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md")}
    p = subprocess.run([sys.executable, "-m", "engine", "--run-dir", str(run)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    st = read_status(run)
    assert p.returncode == 1 and st["status"] == "failed", (p.stdout, p.stderr)
    assert "config.toml" in st["error"] and "no CUDA device" in st["error"] and "\n" not in st["error"]
    assert "Traceback" not in (run / "engine.log").read_text()
    write_status(run, "stopped")
    p = subprocess.run([sys.executable, "-c", "from engine.cli.app import main; main()", "run", "--resume",
                        run.name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2 and len(errs) == 1 and "no CUDA device" in errs[0], p.stderr
    assert read_status(run)["status"] == "stopped"
