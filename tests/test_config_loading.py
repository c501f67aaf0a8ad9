"""engine.config.loading: presets + overrides -> RunConfig, every problem collected, checkpoints resolved."""
from __future__ import annotations

import json

import pytest

from engine.config.loading import (CheckpointInfo, ConfigError, Problem, find_preset, list_presets, load_config,
                                   parse_overrides, presets_dir, resolve_checkpoints)
from engine.config.schema import RunConfig


def write(tmp_path, text, name="p.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def problems_of(fn, *a, **kw) -> list[Problem]:
    with pytest.raises(ConfigError) as ei:
        fn(*a, **kw)
    return ei.value.problems


# --- presets files ------------------------------------------------------------------------

def test_valid_preset_file_loads_typed(tmp_path):
    p = write(tmp_path, 'regime = "online"\nestimator = "mc"\nupdate = "awr"\nmc_samples = 8\n'
                        'gamma = 1\nawr_beta = 0.5\ndeterministic_eval = true\ndescription = "x"\nexpected_sr = 0.9\n')
    cfg = load_config(str(p))
    assert isinstance(cfg, RunConfig)
    assert cfg.mc_samples == 8 and cfg.gamma == 1.0 and isinstance(cfg.gamma, float)
    assert cfg.preset == str(p)
    assert cfg.exp_name == "online-mc8-awr-b0.5-g1"


def test_not_toml_gives_file_and_line(tmp_path):
    p = write(tmp_path, 'gamma = 0.8\nmc_samples = 16\nthis is not toml\n')
    (pr,) = problems_of(load_config, str(p))
    assert pr.file and pr.file.endswith("p.toml") and pr.line == 3
    assert "not valid TOML" in str(pr) and str(pr).startswith(f"{pr.file}:3: ")


def test_binary_file_is_not_toml(tmp_path):
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    (pr,) = problems_of(load_config, str(p))
    assert "not a TOML file" in pr.message


def test_unknown_key_did_you_mean(tmp_path):
    p = write(tmp_path, 'regime = "online"\n\ngama = 0.9\n')
    (pr,) = problems_of(load_config, str(p))
    assert pr.key == "gama" and pr.line == 3
    assert str(pr) == f"{pr.file}:3: key 'gama': unknown key; did you mean 'gamma'?"


@pytest.mark.parametrize("line,key,needle", [
    ('gamma = "0.9"', "gamma", "expected a number, got the string '0.9'; write it without quotes"),
    ("mc_samples = 4.0", "mc_samples", "expected an integer, got float 4.0; write 4"),
    ('deterministic_eval = "yes"', "deterministic_eval", "got the string 'yes'; write true without quotes"),
    ("checkpoint = 76", "checkpoint", "expected a string"),
    ("num_envs = true", "num_envs", "expected an integer, got bool"),
    ("update_epochs = [4]", "update_epochs", "got array"),
])
def test_wrong_type(tmp_path, line, key, needle):
    p = write(tmp_path, line + "\n")
    (pr,) = problems_of(load_config, str(p))
    assert pr.key == key and pr.line == 1 and needle in pr.message


def test_gamma_out_of_range(tmp_path):
    p = write(tmp_path, "gamma = 1.5\n")
    (pr,) = problems_of(load_config, str(p))
    assert str(pr).endswith("key 'gamma': 1.5 is out of range (0, 1]")
    (pr,) = problems_of(load_config, str(write(tmp_path, "gamma = 0\n", "g0.toml")))
    assert "0 is out of range (0, 1]" in pr.message


def test_mc_samples_zero(tmp_path):
    (pr,) = problems_of(load_config, str(write(tmp_path, "mc_samples = 0\n")))
    assert pr.key == "mc_samples" and "must be >= 1" in pr.message


def test_choice_with_suggestion(tmp_path):
    (pr,) = problems_of(load_config, str(write(tmp_path, 'estimator = "iql_v_gae"\n')))
    assert "is not one of gae, mc, iql, iql-v-gae" in pr.message and "did you mean 'iql-v-gae'" in pr.message


def test_several_problems_all_reported(tmp_path):
    p = write(tmp_path, "# comment\ngama = 0.9\ngamma = 1.5\nmc_samples = 0\nupdate = \"sgd\"\n"
                        "num_envs = \"100\"\nexpected_sr = 99.1\n[extra]\nx = 1\n")
    probs = problems_of(load_config, str(p))
    by_key = {pr.key: pr for pr in probs}
    assert set(by_key) == {"gama", "gamma", "mc_samples", "update", "num_envs", "expected_sr", "extra"}
    assert [by_key[k].line for k in ("gama", "gamma", "mc_samples", "update", "num_envs", "expected_sr", "extra")] \
        == [2, 3, 4, 5, 6, 7, 8]
    assert all(pr.file == by_key["gama"].file for pr in probs)
    assert "flat table" in by_key["extra"].message


def test_preset_and_override_problems_together(tmp_path):
    p = write(tmp_path, "gamma = 1.5\n")
    probs = problems_of(load_config, str(p), {"mc_samples": "0", "awr_beta": "abc", "gama": "0.9"})
    assert {pr.key for pr in probs} == {"gamma", "mc_samples", "awr_beta", "gama"}
    gama = next(pr for pr in probs if pr.key == "gama")
    assert gama.file is None and "did you mean 'gamma'" in gama.message


def test_unknown_env(tmp_path):
    p = write(tmp_path, 'env = "pickcube"\n')
    (pr,) = problems_of(load_config, str(p))
    assert pr.key == "env" and pr.line == 1 and "unknown env id" in pr.message
    (pr,) = problems_of(load_config, "online-mc16-awr", env="mujoco:Ant")
    assert pr.key == "env" and pr.file is None


def test_env_and_seed_kwargs_win():
    cfg = load_config("online-mc16-awr", {"env": "pickcube-lite", "seed": "3"}, env="maniskill:PickCube-v1", seed=7)
    assert cfg.env == "maniskill:PickCube-v1" and cfg.seed == 7
    (pr,) = problems_of(load_config, "online-mc16-awr", seed=-1)
    assert pr.key == "seed" and ">= 0" in pr.message


def test_overrides_converted_to_key_types():
    cfg = load_config("online-mc16-awr", {"gamma": "0.9", "mc_samples": "8", "deterministic_eval": "yes",
                                          "awr_beta": 1, "total_timesteps": "5e4", "exp_name": "mine"})
    assert cfg.gamma == 0.9 and cfg.mc_samples == 8 and cfg.deterministic_eval is True
    assert cfg.awr_beta == 1.0 and cfg.total_timesteps == 50000 and cfg.exp_name == "mine"
    assert cfg.preset == "online-mc16-awr"
    for v, want in (("true", True), ("1", True), ("no", False), ("0", False), ("False", False)):
        assert load_config("online-mc16-awr", {"learn_logstd": v}).learn_logstd is want


def test_override_bad_values():
    probs = problems_of(load_config, "online-mc16-awr", {"gamma": "nan", "num_envs": "1.5",
                                                         "norm_adv": "maybe", "description": "x"})
    assert {pr.key for pr in probs} == {"gamma", "num_envs", "norm_adv", "description"}


def test_exp_name_derived():
    assert load_config("online-mc16-awr").exp_name == "online-mc16-awr-b0.5-g0.8"
    assert load_config("online-mc16-awr", {"exp_name": ""}).exp_name == "online-mc16-awr-b0.5-g0.8"
    assert load_config("gae-ppo").exp_name == "online-gae-ppo-g0.8"


# --- preset names -------------------------------------------------------------------------

def test_unknown_preset_suggests_nearest():
    (pr,) = problems_of(find_preset, "online-mc16-awe")
    assert "unknown preset 'online-mc16-awe'" in pr.message and "did you mean 'online-mc16-awr'?" in pr.message
    probs = problems_of(load_config, "onlin-mc16-awr", {"gama": "1"})
    assert len(probs) == 2 and "did you mean 'online-mc16-awr'" in probs[0].message


def test_missing_preset_path(tmp_path):
    (pr,) = problems_of(find_preset, str(tmp_path / "nope.toml"))
    assert "does not exist" in pr.message


def test_presets_dir_env(tmp_path, monkeypatch):
    write(tmp_path, 'description = "mine"\nregime = "offline"\nexpected_sr = 0.5\n', "mine.toml")
    write(tmp_path, "broken = [\n", "broken.toml")
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path))
    assert presets_dir() == tmp_path
    assert find_preset("mine") == tmp_path / "mine.toml"
    infos = {i.name: i for i in list_presets()}
    assert infos["mine"].regime == "offline" and infos["mine"].estimator == "gae" and infos["mine"].expected_sr == 0.5
    assert infos["broken"].description.startswith("(cannot be read")
    assert load_config("mine").preset == "mine"


# --- command-line overrides ---------------------------------------------------------------

def test_parse_overrides_forms():
    assert parse_overrides(["--gamma", "0.9", "--mc_samples=8", "--mc-horizon-tol", "1e-3", "--no-norm_adv",
                            "--learn_logstd", "--awr_beta", "-1"]) == {
        "gamma": "0.9", "mc_samples": "8", "mc_horizon_tol": "1e-3", "norm_adv": "false",
        "learn_logstd": "true", "awr_beta": "-1"}
    assert parse_overrides([]) == {}


def test_override_flag_without_value():
    (pr,) = problems_of(parse_overrides, ["--gamma"])
    assert pr.key == "gamma" and "needs a value" in pr.message
    (pr,) = problems_of(parse_overrides, ["--mc_samples", "--gamma", "0.9"])
    assert pr.key == "mc_samples"


def test_override_stray_positional_and_unknown_all_reported():
    probs = problems_of(parse_overrides, ["0.9", "--gama", "0.9", "--mc_sample", "4", "--gamma"])
    msgs = [str(p) for p in probs]
    assert len(probs) == 4
    assert "unexpected argument '0.9'" in msgs[0]
    assert "did you mean --gamma?" in msgs[1] and "did you mean --mc_samples?" in msgs[2]
    assert "needs a value" in msgs[3]


def test_no_prefix_only_for_bools():
    (pr,) = problems_of(parse_overrides, ["--no-gamma"])
    assert "only works for true/false keys" in pr.message


# --- checkpoints --------------------------------------------------------------------------

@pytest.fixture
def ckdir(tmp_path, monkeypatch):
    d = tmp_path / "ckpts"
    d.mkdir()
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(d))
    return d


LITE_OBS, LITE_ACT = 21, 4  # pickcube-lite's sizes (checked against the weights by resolve_checkpoints)


def save_policy(path, env_id="pickcube-lite", obs_dim=LITE_OBS, act_dim=LITE_ACT, **meta):
    from engine.checkpoints import save_checkpoint
    from engine.nets import Actor

    save_checkpoint(path, env_id=env_id, actor=Actor(obs_dim, act_dim, layers=1, width=8), **meta)
    return path


def save_critic(path, env_id="pickcube-lite", obs_dim=LITE_OBS, **meta):
    from engine.checkpoints import save_checkpoint
    from engine.nets import Critic

    save_checkpoint(path, env_id=env_id, critic=Critic(obs_dim, layers=1, width=8), **meta)
    return path


def test_roles_not_built_yet_are_not_problems(ckdir):
    cfg = load_config("online-mc16-awr", {"critic_checkpoint": "pretrained_critic_sparse"})
    infos, probs = resolve_checkpoints(cfg)
    assert probs == []
    assert set(infos) == {"checkpoint", "critic_checkpoint", "optimal_checkpoint"}
    assert all(isinstance(i, CheckpointInfo) and i.missing_role and i.path is None for i in infos.values())
    assert infos["critic_checkpoint"].role == "critic-expert"


def test_used_keys_only(ckdir):
    infos, _ = resolve_checkpoints(load_config("onpolicy-mc16-awr"))
    assert set(infos) == {"checkpoint"}
    infos, _ = resolve_checkpoints(load_config("offline-mc16-awr"))
    assert set(infos) == {"checkpoint", "data_checkpoint"}
    infos, _ = resolve_checkpoints(load_config("gae-ppo", {"optimal_checkpoint": "/nope.pt"}))
    assert set(infos) == {"checkpoint", "critic_checkpoint"}
    infos, probs = resolve_checkpoints(load_config("gae-ppo", {"checkpoint": "none"}))
    assert infos["checkpoint"].path is None and not infos["checkpoint"].missing_role and probs == []


def test_missing_checkpoint_path(ckdir, tmp_path):
    cfg = load_config("online-mc16-awr", {"checkpoint": str(tmp_path / "gone.pt"), "optimal_checkpoint": "ckpt_30"})
    infos, probs = resolve_checkpoints(cfg)
    assert {p.key for p in probs} == {"checkpoint", "optimal_checkpoint"}
    by = {p.key: p for p in probs}
    assert "gone.pt" in by["checkpoint"].message and "existing file" in by["checkpoint"].message
    assert "did you mean 'ckpt_301'?" in by["optimal_checkpoint"].message


def test_checkpoint_of_another_env(ckdir, tmp_path):
    p = save_policy(tmp_path / "ant.pt", env_id="maniskill:PushCube-v1", role="start", det_sr=0.4)
    infos, probs = resolve_checkpoints(load_config("online-mc16-awr", {"checkpoint": str(p)}))
    (pr,) = probs
    assert pr.key == "checkpoint" and "maniskill:PushCube-v1" in pr.message and "pickcube-lite" in pr.message
    assert infos["checkpoint"].meta["det_sr"] == 0.4


def test_checkpoint_of_other_sizes(ckdir, tmp_path):
    p = save_policy(tmp_path / "small.pt", obs_dim=6, act_dim=2)
    cfg = load_config("online-mc16-awr", {"checkpoint": str(p)})
    (pr,) = resolve_checkpoints(cfg)[1]  # the env's own sizes are known: check refuses what the worker would
    assert "6-D observations" in pr.message and "pickcube-lite" in pr.message
    assert resolve_checkpoints(cfg, obs_dim=6, act_dim=2)[1] == []
    (pr,) = resolve_checkpoints(cfg, obs_dim=42, act_dim=2)[1]
    assert "6-D observations" in pr.message
    (pr,) = resolve_checkpoints(cfg, obs_dim=6, act_dim=4)[1]
    assert "2-D actions" in pr.message


def test_corrupt_checkpoint(ckdir, tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"not a zip at all")
    (pr,) = resolve_checkpoints(load_config("online-mc16-awr", {"checkpoint": str(p)}))[1]
    assert "corrupt" in pr.message


def test_critic_where_policy_belongs_and_vice_versa(ckdir, tmp_path):
    c = save_critic(tmp_path / "v.pt", gamma=0.8)
    a = save_policy(tmp_path / "pi.pt")
    cfg = load_config("gae-ppo", {"checkpoint": str(c), "critic_checkpoint": str(a)})
    probs = resolve_checkpoints(cfg)[1]
    assert {p.key for p in probs} == {"checkpoint", "critic_checkpoint"}
    assert all("not a" in p.message for p in probs)
    # by role name, even before the ladder exists
    probs = resolve_checkpoints(load_config("gae-ppo", {"checkpoint": "critic-expert",
                                                        "critic_checkpoint": "ckpt_101"}))[1]
    assert {p.key for p in probs} == {"checkpoint", "critic_checkpoint"}


def test_ladder_roles_resolve_with_meta(ckdir):
    from engine.checkpoints import ladder_dir, write_index

    d = ladder_dir("pickcube-lite")
    save_policy(d / "start.pt", role="start", det_sr=0.438)
    write_index("pickcube-lite", {"env_id": "pickcube-lite", "roles": {"start": {"file": "start.pt"}},
                                  "iterations": []})
    infos, probs = resolve_checkpoints(load_config("online-mc16-awr", {"checkpoint": "ckpt_76_logstd-1.5"}))
    assert probs == []
    assert infos["checkpoint"].role == "start" and infos["checkpoint"].meta["det_sr"] == 0.438
    assert not infos["checkpoint"].missing_role and infos["optimal_checkpoint"].missing_role


def test_corrupt_ladder_index_is_a_problem(ckdir):
    d = ckdir / "pickcube-lite"
    d.mkdir()
    (d / "index.json").write_text("{not json")
    probs = resolve_checkpoints(load_config("online-mc16-awr"))[1]
    assert probs and "not valid JSON" in probs[0].message


def test_config_error_str_lists_every_problem():
    e = ConfigError([Problem("a", file="f.toml", line=2, key="k"), Problem("b")])
    assert str(e) == "f.toml:2: key 'k': a\nb"
    assert json.dumps([str(p) for p in e.problems])
