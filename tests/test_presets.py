"""The shipped presets: they load, carry the seed's values and metadata, and validate without errors."""
from __future__ import annotations

import tomllib

import pytest

from engine.config.loading import META_KEYS, checkpoint_metas, list_presets, load_config, presets_dir, \
    resolve_checkpoints
from engine.config.schema import FIELDS
from engine.validate import validate

REQUIRED = ("online-mc16-awr", "onpolicy-mc16-awr", "gae-ppo", "offline-mc16-awr", "iql-awr-offline")
SHIPPED = sorted(p.stem for p in presets_dir().glob("*.toml"))


@pytest.fixture(autouse=True)
def empty_checkpoints(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYGROUND_PRESETS_DIR", raising=False)
    d = tmp_path / "ckpts"
    d.mkdir()
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(d))
    return d


def test_required_presets_exist():
    assert set(REQUIRED) <= set(SHIPPED)
    assert {i.name for i in list_presets()} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_loads_and_validates_without_errors(name):
    with open(presets_dir() / f"{name}.toml", "rb") as f:
        raw = tomllib.load(f)
    assert set(raw) <= set(FIELDS) | set(META_KEYS)
    assert isinstance(raw.get("description"), str) and raw["description"]
    cfg = load_config(name)
    infos, problems = resolve_checkpoints(cfg)
    assert problems == []
    assert all(i.missing_role or i.path is None for i in infos.values())
    findings = validate(cfg, checkpoint_metas(infos))
    assert [f.id for f in findings if f.severity == "error"] == []


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_validates_against_a_built_ladder(name, empty_checkpoints):
    """With ladder metadata like the seed's (start det SR 43.8%, expert ~99%), still no error."""
    from engine.checkpoints import ladder_dir, save_checkpoint, write_index
    from engine.nets import Actor, Critic

    d = ladder_dir("pickcube-lite")
    roles = {"start": 0.438, "expert": 0.99, "optimal": 1.0}
    for role, det in roles.items():
        save_checkpoint(d / f"{role}.pt", env_id="pickcube-lite", role=role, det_sr=det, stoch_sr=det * 0.6,
                        actor=Actor(6, 4, layers=1, width=8))
    for role in ("critic-expert", "critic-optimal"):
        save_checkpoint(d / f"{role}.pt", env_id="pickcube-lite", role=role, gamma=0.8,
                        critic=Critic(6, layers=1, width=8))
    write_index("pickcube-lite", {"env_id": "pickcube-lite", "iterations": [],
                                  "roles": {r: {"file": f"{r}.pt"} for r in (*roles, "critic-expert", "critic-optimal")}})
    cfg = load_config(name)
    infos, problems = resolve_checkpoints(cfg, obs_dim=6, act_dim=4)
    assert problems == []
    assert not any(i.missing_role for i in infos.values())
    assert [f.id for f in validate(cfg, checkpoint_metas(infos)) if f.severity == "error"] == []


def test_online_mc16_awr_has_the_seeds_values():
    c = load_config("online-mc16-awr")
    assert (c.regime, c.estimator, c.update, c.rollout_policy) == ("online", "mc", "awr", "optimal")
    assert (c.mc_samples, c.awr_beta, c.gamma, c.num_envs, c.num_steps, c.update_epochs, c.total_timesteps) == \
        (16, 0.5, 0.8, 100, 50, 200, 50000)
    assert (c.checkpoint, c.optimal_checkpoint) == ("start", "optimal")
    info = {i.name: i for i in list_presets()}["online-mc16-awr"]
    assert info.expected_sr == 0.991 and info.seed_command.startswith("python -m RL.mc_finetune_awr_parallel")
    assert validate(c) == []


def test_other_required_presets_values():
    """Spot checks; tests/test_seed_fidelity.py checks every seed-relevant key against docs/seed-fidelity.toml."""
    c = load_config("onpolicy-mc16-awr")
    assert (c.rollout_policy, c.mc_samples, c.awr_beta, c.gamma, c.num_minibatches) == ("current", 16, 0.5, 0.8, 5)
    c = load_config("gae-ppo")
    assert (c.estimator, c.update, c.num_envs, c.num_steps, c.num_minibatches, c.update_epochs, c.target_kl,
            c.gamma, c.critic_checkpoint) == ("gae", "ppo", 50, 100, 5, 20, 100.0, 0.8, "critic-expert")
    c = load_config("offline-mc16-awr")
    assert (c.regime, c.estimator, c.update, c.mc_samples, c.awr_beta, c.num_iterations, c.checkpoint,
            c.data_checkpoint, c.rollout_policy, c.num_envs, c.num_steps, c.num_minibatches, c.update_epochs) == \
        ("offline", "mc", "awr", 16, 1.0, 100, "start", "start", "data", 128, 200, 32, 4)
    c = load_config("iql-awr-offline")
    assert (c.regime, c.estimator, c.update, c.iql_expectile_tau, c.awr_beta, c.data_checkpoint) == \
        ("offline", "iql", "awr", 0.7, 1.0, "start")
    assert [f.id for f in validate(c)] == ["KB08"]      # the seed's known limitation, a warning
    info = {i.name: i for i in list_presets()}
    assert info["onpolicy-mc16-awr"].expected_sr == 0.967 and info["gae-ppo"].expected_sr == 0.932
    assert info["offline-mc16-awr"].expected_sr == 0.833 and "88.2%" in info["offline-mc16-awr"].description
    for name in ("online-mc16-awr", "online-mc1-awr", "onpolicy-mc16-awr", "gae-ppo", "gae-ppo-gamma99",
                 "offline-mc16-awr"):
        assert "--num_minibatches" in info[name].seed_command     # the logged command, not the README's


def test_overrides_on_a_preset_trigger_the_rules():
    assert "KB03" in [f.id for f in validate(load_config("gae-ppo", {"update_epochs": "20", "target_kl": "0.1"}))]
    assert "KB07" in [f.id for f in validate(load_config("offline-mc16-awr", {"rollout_policy": "optimal"}))]
    assert "KB01" in [f.id for f in validate(load_config("online-mc16-awr", {"checkpoint": "ckpt_101"}))]
