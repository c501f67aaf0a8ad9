"""What defines "the same experiment" is drawn on the CPU whatever the run's device.

The CUDA run of a config used to see another eval set than the CPU run of the same config: the
twin drew its episodes' base key from a generator on the env's device, and CUDA's Philox stream
gives another number than the CPU's Mersenne Twister for the same seed (the start policy scored
0.424 on the CUDA eval set, 0.410 on the CPU's). These tests need no GPU: the env and the
Finetuner are built on the 'meta' device (where nothing can be read back, as nothing on a GPU
can be compared here) and every random draw they make is recorded.
"""
from __future__ import annotations

import pytest
import torch

from engine.config.schema import RunConfig
from engine.envs.pickcube_lite import _M32, PickCubeLite, _hash32
from engine.nets import Actor, gaussian_noise
from engine.train import evaluation as evaluation_mod
from engine.train import finetune as finetune_mod
from engine.train.evaluation import EVAL_SEED_OFFSET, make_eval_env

META = torch.device("meta")
CPU = torch.device("cpu")


@pytest.fixture
def draws(monkeypatch):
    """Every torch.randint / torch.randn call: (generator device, draw device, value if on the CPU)."""
    seen: list[tuple] = []
    real_randint, real_randn = torch.randint, torch.randn

    def record(real):
        def spy(*args, generator=None, device=None, **kw):
            out = real(*args, generator=generator, device=device, **kw)
            seen.append((None if generator is None else generator.device, out.device,
                         out.tolist() if out.device == CPU else None))
            return out
        return spy

    monkeypatch.setattr(torch, "randint", record(real_randint))
    monkeypatch.setattr(torch, "randn", record(real_randn))
    return seen


def test_the_twins_episode_keys_come_from_a_cpu_generator_whatever_the_device(draws):
    for device in (CPU, META):
        env = PickCubeLite(8, seed=3, device=device)
        env.reset(seed=5)
        env.reset()
        assert env._key.device == device  # the keys themselves live on the device
    assert len(draws) == 6
    assert all(gen == CPU and where == CPU for gen, where, _ in draws), draws
    cpu_values, meta_values = [d[2] for d in draws[:3]], [d[2] for d in draws[3:]]
    assert cpu_values == meta_values  # the same base keys: the same episodes on every device


def test_the_eval_set_is_the_same_on_every_device(draws):
    make_eval_env("pickcube-lite", 16, device="cpu").reset(seed=EVAL_SEED_OFFSET)
    make_eval_env("pickcube-lite", 16, device="meta").reset(seed=EVAL_SEED_OFFSET)
    assert len(draws) == 4 and all(gen == CPU for gen, _, _ in draws)
    assert draws[0][2] == draws[1][2] == draws[2][2] == draws[3][2]


def test_the_keys_are_those_a_cpu_generator_gives():
    """The CPU stream itself is unchanged: results measured on the CPU before stay valid."""
    env = PickCubeLite(4, seed=11)
    base = int(torch.randint(0, 2**32, (1,), generator=torch.Generator().manual_seed(11)).item())
    assert torch.equal(env._key, _hash32((torch.arange(4) + base) & _M32))


def test_noise_is_drawn_where_its_generator_lives():
    mean = torch.zeros(5, 4, device=META)
    noise = gaussian_noise(mean, torch.Generator().manual_seed(1))
    assert noise.device == META and noise.shape == (5, 4)
    cpu = gaussian_noise(torch.zeros(5, 4), torch.Generator().manual_seed(1))
    assert torch.equal(cpu, torch.randn(5, 4, generator=torch.Generator().manual_seed(1)))  # the old CPU stream


def test_a_policy_on_another_device_samples_with_a_cpu_generator(draws):
    actor = Actor(21, 4).to(META)
    a = actor.act(torch.zeros(3, 21, device=META), generator=torch.Generator().manual_seed(0))
    b, logp = actor.act_with_logprob(torch.zeros(3, 21, device=META), generator=torch.Generator().manual_seed(0))
    assert a.device == b.device == logp.device == META
    assert [(g, w) for g, w, _ in draws] == [(CPU, CPU), (CPU, CPU)]


def test_a_stochastic_evaluation_draws_its_noise_on_the_cpu(monkeypatch):
    """The evaluation's sampling generator is a CPU one whatever the device of the observations."""
    made: list = []
    real = torch.Generator

    def generator(device="cpu"):
        made.append(torch.device(device))
        return real(device=device)

    class Env:  # a stand-in on 'meta': one step, then stop
        num_envs, max_episode_steps = 2, 1

        def reset(self, seed=None):
            return torch.zeros(2, 21, device=META)

        def step(self, action):
            raise StopIteration

    monkeypatch.setattr(evaluation_mod.torch, "Generator", generator)
    with pytest.raises(StopIteration):
        evaluation_mod.evaluate(Env(), Actor(21, 4).to(META), deterministic=False)
    assert made == [CPU]


def test_the_offline_dataset_is_collected_with_the_cpu_generator(monkeypatch):
    """On a GPU run the sampling generator lives on the GPU; the dataset's actions must come from
    the CPU (index) generator, which is the sampling one on a CPU run: the same dataset."""
    cfg = RunConfig(env="pickcube-lite", regime="offline", estimator="mc", update="awr", rollout_policy="current",
                    checkpoint="none", data_checkpoint="none", num_envs=4, num_steps=3, num_eval_envs=2,
                    num_minibatches=1, update_epochs=1, mc_samples=1)
    # (index generator, a second CPU one standing for the device's: no generator lives on meta)
    monkeypatch.setattr(finetune_mod, "make_generators",
                        lambda seed, device: (torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)))
    f = finetune_mod.Finetuner(cfg, device="meta")
    seen = []

    class Collected(Exception):
        pass

    def collect(env, actor, obs, num_steps, **kw):
        seen.append(kw["generator"])
        raise Collected

    monkeypatch.setattr(finetune_mod, "collect", collect)
    with pytest.raises(Collected):
        f._collect_dataset()
    assert seen == [f.gen] and f.gen.device == CPU and f.gen is not f.sample_gen
