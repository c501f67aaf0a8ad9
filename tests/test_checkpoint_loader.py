"""The one checkpoint loader, `engine.checkpoints.load_net`: resolve, load weights-only, check the
env fits, build on the CPU, move; and the trainer, the ranking protocols and the ladder builder
go through it."""
from types import SimpleNamespace

import pytest
import torch

from engine import checkpoints as ck
from engine.analysis import ranking
from engine.nets import Actor, Critic
from engine.train import finetune

ENV = "pickcube-lite"


@pytest.fixture
def ladder(tmp_path, monkeypatch):
    """A ladder with a start policy and a critic under a private checkpoints dir."""
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path))
    d = ck.ladder_dir(ENV)
    actor, critic = Actor(21, 4, logstd_init=-1.5, learn_logstd=False), Critic(21)
    ck.save_checkpoint(d / "start.pt", env_id=ENV, role="start", iteration=7, actor=actor, det_sr=0.4)
    ck.save_checkpoint(d / "critic.pt", env_id=ENV, role="critic-expert", critic=critic, gamma=0.8)
    ck.write_index(ENV, {"env_id": ENV, "roles": {"start": {"file": "start.pt"},
                                                  "critic-expert": {"file": "critic.pt"}}})
    return SimpleNamespace(dir=d, actor=actor, critic=critic)


def test_a_policy_by_seed_name_and_a_critic_by_path(ladder):
    obs = torch.randn(6, 21)
    got = ck.load_net("ckpt_76_logstd-1.5", "policy", ENV, 21, 4, what="policy")
    assert got.role == "start" and got.path == ladder.dir / "start.pt" and got.meta["iteration"] == 7
    assert isinstance(got.net, Actor) and torch.equal(got.net(obs), ladder.actor(obs))
    assert not got.net.logstd.requires_grad
    assert ck.load_net("start", "policy", ENV, learn_logstd=True).net.logstd.requires_grad
    c = ck.load_net(ladder.dir / "critic.pt", "critic", ENV, 21)
    assert c.role is None and c.meta["gamma"] == 0.8 and torch.equal(c.net(obs), ladder.critic(obs))


def test_built_on_the_cpu_then_moved(ladder):
    with torch.device("meta"):  # a default device around the call does not reach the build
        got = ck.load_net("start", "policy", ENV)
    assert next(got.net.parameters()).device.type == "cpu"
    moved = ck.load_net("start", "policy", ENV, device="meta")
    assert next(moved.net.parameters()).device.type == "meta"


@pytest.mark.parametrize("spec, kind, env, sizes, match", [
    ("critic-expert", "policy", ENV, (21, 4), "holds a critic, not a policy"),
    ("start", "critic", ENV, (21, None), "holds no critic"),
    ("start", "policy", ENV, (21, 7), "outputs 4-D actions"),
    ("start", "policy", ENV, (42, 4), "21-D observations"),
    ("none", "policy", ENV, (21, 4), "'none' names no checkpoint"),
    ("nope.pt", "policy", ENV, (21, 4), "neither a role"),
])
def test_unusable_checkpoints_are_one_line(ladder, spec, kind, env, sizes, match):
    with pytest.raises(ck.CheckpointError, match=match) as e:
        ck.load_net(spec, kind, env, *sizes, what=f"checkpoint {spec}")
    assert "\n" not in str(e.value)


def test_a_checkpoint_of_another_env_is_refused(ladder):
    with pytest.raises(ck.CheckpointError, match="trained on env 'pickcube-lite'"):
        ck.load_net(ladder.dir / "start.pt", "policy", "maniskill:PickCube-v1", 42, 4)


def test_the_trainer_and_the_ranking_load_through_it(ladder, monkeypatch):
    calls = []
    real = ck.load_net

    def spy(spec, kind, *args, **kwargs):
        calls.append((str(spec), kind))
        return real(spec, kind, *args, **kwargs)

    monkeypatch.setattr(ck, "load_net", spy)
    env = SimpleNamespace(env_id=ENV, obs_dim=21, act_dim=4, device=torch.device("cpu"))
    assert isinstance(finetune.load_policy("start", env), Actor)
    assert isinstance(finetune.load_critic("critic-expert", env), Critic)
    assert ranking._load_policy("start", env, seed=0)[1]["role"] == "start"
    assert ranking._load_critic("critic-expert", env)[1]["gamma"] == 0.8
    assert calls == [("start", "policy"), ("critic-expert", "critic"), ("start", "policy"),
                     ("critic-expert", "critic")]
    assert finetune.load_critic("none", env) is None and len(calls) == 4
