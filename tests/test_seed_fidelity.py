"""Every preset against the ONE seed-fidelity table (docs/seed-fidelity.toml), and the doc
(docs/seed-fidelity.md) against its rendering: presets, table and doc cannot drift apart."""
from __future__ import annotations

import shlex
import tomllib

import pytest

from engine.config.loading import META_KEYS, load_config, preset_metadata, presets_dir
from engine.validate.fidelity import DOC, is_same, load_rows, rendered_doc

ROWS = load_rows()
SHIPPED = sorted(p.stem for p in presets_dir().glob("*.toml"))
IDENTITY = ("regime", "estimator", "update")   # what a preset is, not a tunable the seed could differ on


def rows_of(preset: str) -> list[dict]:
    return [r for r in ROWS if r["preset"] == preset]


@pytest.fixture(autouse=True)
def _no_presets_override(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_PRESETS_DIR", raising=False)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_key_a_preset_sets_is_in_the_table(name):
    with open(presets_dir() / f"{name}.toml", "rb") as f:
        raw = tomllib.load(f)
    keys = {r["key"] for r in rows_of(name)}
    missing = set(raw) - set(META_KEYS) - set(IDENTITY) - keys
    assert not missing, f"{name} sets {sorted(missing)} without a row in docs/seed-fidelity.toml"


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_values_equal_the_table(name):
    cfg = load_config(name)
    for r in rows_of(name):
        assert getattr(cfg, r["key"]) == r["ours"], f"{name}.{r['key']}: preset {getattr(cfg, r['key'])!r}, table {r['ours']!r}"


def test_every_difference_says_why_and_sources_are_given():
    assert {r["preset"] for r in ROWS} == set(SHIPPED)
    for r in ROWS:
        assert r["source"].strip(), r
        if not is_same(r):
            assert r.get("why", "").strip(), f"{r['preset']}.{r['key']} differs from the seed without a why"


@pytest.mark.parametrize("name", SHIPPED)
def test_the_logged_command_agrees_with_the_table(name):
    cmd = preset_metadata(name).get("seed_command")
    if not cmd:
        return
    argv = shlex.split(cmd)
    flags = {argv[i][2:]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")
             and not argv[i + 1].startswith("--")}
    for r in rows_of(name):
        if r["key"] in flags and not isinstance(r["seed"], str):
            assert float(flags[r["key"]]) == float(r["seed"]), f"{name}.{r['key']}: command says {flags[r['key']]}"


def test_the_doc_is_the_rendering_of_the_table():
    text = DOC.read_text()
    assert rendered_doc(text, ROWS) == text, "docs/seed-fidelity.md is stale: python -m engine.validate.fidelity"


def test_a_drifted_preset_is_caught(tmp_path, monkeypatch):
    """The check can fail: a preset copied with one key changed no longer matches its rows."""
    src = (presets_dir() / "online-mc16-awr.toml").read_text().replace("num_minibatches = 5", "num_minibatches = 25")
    (tmp_path / "online-mc16-awr.toml").write_text(src)
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path))
    cfg = load_config("online-mc16-awr")
    row = next(r for r in rows_of("online-mc16-awr") if r["key"] == "num_minibatches")
    assert getattr(cfg, "num_minibatches") != row["ours"]
