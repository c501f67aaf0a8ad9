"""The pickcube-lite ladder shipped inside the package: complete, small, what its metadata says
(the shipped `start` and `expert` re-evaluated), and overridden by a built ladder."""
from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from engine import checkpoints as ck
from engine.nets import Actor
from engine.train.evaluation import evaluate, make_eval_env

ENV = "pickcube-lite"
SHIPPED = ck.shipped_ladder_dir(ENV)


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    """Shipped ladders on, and an empty checkpoints dir (nothing built)."""
    monkeypatch.setenv(ck.SHIPPED_LADDERS_ENV, "1")
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    return tmp_path / "ck"


def test_the_package_ships_a_complete_small_ladder():
    def not_strict(c):
        raise AssertionError(f"index.json holds {c}: not strict JSON")

    index = json.loads((SHIPPED / "index.json").read_text(), parse_constant=not_strict)
    assert index["env_id"] == ENV and set(index["roles"]) == set(ck.ROLES)
    total = 0
    for role, entry in index["roles"].items():
        path = SHIPPED / entry["file"]
        meta = ck.read_meta(path)  # from the JSON sidecar, which must match the file
        assert json.loads((SHIPPED / (entry["file"] + ".json")).read_text())["file_size"] == path.stat().st_size
        assert meta["role"] == role and meta["env_id"] == ENV and meta["iteration"] == entry["iteration"]
        total += path.stat().st_size
    assert total < 8_000_000
    assert index["pretrain"]["seed"] == 0  # built by `playground pretrain` with a fixed seed
    start = ck.read_meta(SHIPPED / "start.pt")
    assert start["logstd"] == pytest.approx(-1.5) and start["learn_logstd"] is False
    assert 0.40 <= start["det_sr"] <= 0.50
    expert, optimal = ck.read_meta(SHIPPED / "expert.pt"), ck.read_meta(SHIPPED / "optimal.pt")
    assert expert["det_sr"] >= 0.95  # (its stochastic SR is not clearly lower here: choose_ladder falls back)
    assert optimal["det_sr"] >= expert["det_sr"]
    for role in ("expert", "optimal"):  # the checkpoint's own learned log-std is kept
        m = ck.read_meta(SHIPPED / f"{role}.pt")
        assert m["learn_logstd"] is True and m["logstd"] > -1.5
    for critic, policy in (("critic-expert", "expert"), ("critic-optimal", "optimal")):
        m = ck.read_meta(SHIPPED / f"{critic}.pt")
        assert m["kind"] == "critic" and m["fitted_on"] == policy and m["gamma"] == 0.8


def _sr_bound(p: float, n1: int, n2: int, sigmas: float = 3.5) -> float:
    """How far two independent SR estimates of the same policy may differ (binomial noise)."""
    p = min(max(p, 0.02), 0.98)
    return sigmas * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


@pytest.mark.parametrize("role", ["start", "expert"])
def test_shipped_policy_measures_what_its_metadata_says(role):
    cp = ck.load_checkpoint(SHIPPED / f"{role}.pt")
    actor = cp.build_actor()
    assert isinstance(actor, Actor)
    n_meta = json.loads((SHIPPED / "index.json").read_text())["pretrain"]["num_eval_envs"]
    # the same evaluation as at build time (fixed reset seed): the same result, up to float noise
    same = evaluate(make_eval_env(ENV, n_meta, device="cpu"), actor, deterministic=True)["sr"]
    assert abs(same - cp.meta["det_sr"]) <= 2 / n_meta
    # fresh episodes: within the evaluation's binomial noise
    n = 400
    fresh = evaluate(make_eval_env(ENV, n, device="cpu"), actor, deterministic=True, seed=7_000_001)["sr"]
    assert abs(fresh - cp.meta["det_sr"]) <= _sr_bound(cp.meta["det_sr"], n_meta, n)


def test_roles_resolve_to_the_shipped_ladder_on_a_fresh_checkout(shipped):
    index = ck.read_index(ENV)
    assert index["source"] == "shipped" and index["dir"] == str(SHIPPED)
    assert {e["source"] for e in index["roles"].values()} == {"shipped"}
    assert ck.resolve_checkpoint("ckpt_76_logstd-1.5", ENV).path == SHIPPED / "start.pt"
    assert ck.resolve_checkpoint("pretrained_critic_sparse", ENV).path == SHIPPED / "critic-expert.pt"


def test_a_built_ladder_overrides_the_shipped_one(shipped):
    d = ck.ladder_dir(ENV)
    ck.save_checkpoint(d / "start.pt", env_id=ENV, role="start", iteration=3, actor=Actor(42, 4), det_sr=0.44)
    ck.write_index(ENV, {"env_id": ENV, "roles": {"start": {"file": "start.pt", "iteration": 3}}, "iterations": []})
    index = ck.read_index(ENV)
    assert index["source"] == "built" and index["dir"] == str(d) and index["roles"]["start"]["source"] == "built"
    assert ck.resolve_checkpoint("start", ENV).path == d / "start.pt"
    # the built ladder replaces the shipped one as a whole: its missing roles are missing
    with pytest.raises(ck.CheckpointError, match="no 'optimal' checkpoint"):
        ck.resolve_checkpoint("optimal", ENV)
    # an empty built index (no roles) does not hide the shipped ladder
    ck.write_index(ENV, {"env_id": ENV, "roles": {}, "iterations": []})
    assert ck.read_index(ENV)["source"] == "shipped"


def test_shipped_ladders_can_be_turned_off(shipped, monkeypatch):
    monkeypatch.setenv(ck.SHIPPED_LADDERS_ENV, "0")
    index = ck.read_index(ENV)
    assert index["roles"] == {} and index["source"] is None
    with pytest.raises(ck.CheckpointError, match="playground pretrain --env pickcube-lite"):
        ck.resolve_checkpoint("start", ENV)


def test_checkpoints_command_says_where_each_role_comes_from(shipped, monkeypatch):
    from engine.cli.app import app

    monkeypatch.setenv("COLUMNS", "200")
    r = CliRunner().invoke(app, ["checkpoints", "--json"], catch_exceptions=False)
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["dir"] == str(SHIPPED)
    assert [row["role"] for row in out["roles"]] == list(ck.ROLES)
    assert {row["source"] for row in out["roles"]} == {"shipped"}
    assert all(row["file"].startswith(str(SHIPPED)) for row in out["roles"])
    table = CliRunner().invoke(app, ["checkpoints"], catch_exceptions=False)
    assert table.exit_code == 0 and "shipped" in table.stdout and "ckpt_76_logstd-1.5" in table.stdout


def test_a_fresh_checkout_runs_the_presets_without_pretraining(shipped):
    """Every role the presets name resolves to a shipped file: `playground run` has nothing to build."""
    from engine.config.loading import list_presets, load_config, resolve_checkpoints

    for preset in list_presets():
        cfg = load_config(preset.name, {})
        if cfg.env != ENV:
            continue
        infos, problems = resolve_checkpoints(cfg)
        assert problems == [], (preset.name, problems)
        for info in infos.values():
            assert not info.missing_role, (preset.name, info.key)
            if info.role is not None:
                assert info.path.parent == SHIPPED and info.meta["role"] == info.role
