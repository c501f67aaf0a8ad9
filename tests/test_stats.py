"""Statistics over seeds (engine.analysis.stats) and where they show: `sweep --json` on an 8-seed
sweep, `compare --group` (table, JSON, a figure with CI bands).

The sweeps here run a small fake worker (SEEDED_WORKER) whose SR depends on the run's seed, so
that the seeds of one grid point spread as real ones do.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.analysis.stats import band, block, describe, group_runs, iqm, p_improve, values_of_rows
from engine.cli.app import app
from engine.config.schema import RunConfig
from engine.launcher import prepare_run
from engine.records import write_status

NO_LADDER = ["--checkpoint", "none", "--critic_checkpoint", "none", "--optimal_checkpoint", "none",
             "--data_checkpoint", "none"]

SEEDED_WORKER = r'''
import json, os, sys, tomllib
from pathlib import Path
sys.path.insert(0, REPO)
from engine.records import now_iso, write_status

args = sys.argv[1:]
run_dir = Path(args[args.index("--run-dir") + 1])
conf = tomllib.loads((run_dir / "config.toml").read_text())
seed, gamma = conf["seed"], conf["gamma"]
write_status(run_dir, "running", pid=os.getpid(), started=now_iso(), ended=None, exit_code=None, error=None)
lift = 0.1 if gamma > 0.97 else 0.0
with open(run_dir / "metrics.jsonl", "a") as m:
    for it in range(4):
        sr = min(1.0, 0.3 + 0.12 * it + lift + 0.01 * ((seed * 5) % 8))
        m.write(json.dumps({"iteration": it, "env_steps": 1000 * it + 7 * seed, "wall_s": 0.1 * it, "sr": sr,
                            "sr_at_end": sr / 2}) + "\n")
write_status(run_dir, "done", exit_code=0)
'''


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    worker = tmp_path / "seeded_worker.py"
    worker.write_text(f"REPO = {str(Path(__file__).resolve().parents[1])!r}\n" + SEEDED_WORKER)
    e = {"PLAYGROUND_RUNS_DIR": str(tmp_path / "runs"), "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"),
         "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md"), "PLAYGROUND_WORKER": f"{sys.executable} {worker}",
         "PLAYGROUND_DEBUG": "", "COLUMNS": "160"}
    for k, v in e.items():
        monkeypatch.setenv(k, v)
    return e


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def make_run(runs: Path, name: str, srs: list[float], seed: int = 0, **cfg) -> Path:
    c = RunConfig(checkpoint="none", exp_name=name, preset="gae-ppo", num_envs=10, num_steps=100, seed=seed,
                  total_timesteps=1000 * max(1, len(srs) - 1), **cfg)
    d = prepare_run(c, [], runs_dir=runs, name=f"{name}-s{seed}")
    with open(d / "metrics.jsonl", "w") as f:
        for i, sr in enumerate(srs):
            f.write(json.dumps({"iteration": i, "env_steps": 1000 * i, "wall_s": 2.0 * i, "sr": sr,
                                "sr_at_end": sr / 2}) + "\n")
    write_status(d, "done", pid=None, started="2026-01-01T00:00:00+00:00", exit_code=0)
    return d


# --- the statistics ------------------------------------------------------------------------

def test_describe_gives_the_iqm_and_a_ci_that_holds_it():
    x = [0.93, 0.992, 0.946, 0.95, 0.91, 0.97, 0.88, 0.96]
    d = describe(x)
    middle = sorted(x)[2:6]  # the IQM of 8 values: the mean of the middle four
    assert d["n"] == 8 and d["iqm"] == pytest.approx(sum(middle) / 4) and d["mean"] == pytest.approx(np.mean(x))
    assert d["median"] == pytest.approx(np.median(x)) and d["min"] == 0.88 and d["max"] == 0.992
    lo, hi = d["ci95"]
    assert min(x) <= lo < d["iqm"] < hi <= max(x)
    assert describe(x) == d  # a fixed generator seed: the same CI every time
    # the IQM ignores one wild seed, the mean does not
    wild = describe(x[:-1] + [0.0])
    assert wild["mean"] < d["mean"] - 0.1 and abs(wild["iqm"] - d["iqm"]) < 0.02


def test_describe_of_few_or_equal_values():
    assert describe([]) is None and describe([None]) is None
    one = describe([0.5])
    assert one["n"] == 1 and one["iqm"] == 0.5 and one["ci95"] is None
    assert describe([0.7, 0.7, 0.7])["ci95"] == [0.7, 0.7]
    assert iqm(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)


def test_p_improve_counts_ties_half_and_has_a_ci():
    hi, lo = [0.9, 0.92, 0.95, 0.97], [0.5, 0.6, 0.7, 0.8]
    p = p_improve(hi, lo)
    assert p["p"] == 1.0 and p["ci95"] == [1.0, 1.0]
    assert p_improve(lo, hi)["p"] == 0.0
    assert p_improve([0.5, 0.5], [0.5, 0.5])["p"] == 0.5
    mixed = p_improve([0.1, 0.4, 0.6, 0.9], [0.3, 0.5, 0.7, 0.2])
    assert mixed["p"] == pytest.approx(9 / 16)  # 9 of the 16 pairs favour x
    assert mixed["ci95"][0] < mixed["p"] < mixed["ci95"][1]
    assert p_improve([], [0.5]) is None and p_improve([0.9], [0.5])["ci95"] is None


def test_values_and_block_of_runs():
    rows = [{"iteration": 0, "sr": 0.4, "sr_at_end": 0.2}, {"iteration": 1, "sr": 0.9, "sr_at_end": 0.6},
            {"iteration": 2, "sr": 0.8, "sr_at_end": 0.5}, {"iteration": 3, "env_steps": 5}]
    v = values_of_rows(rows)
    assert v == {"final_sr": 0.8, "peak_sr": 0.9, "sr_at_end": 0.5}
    assert values_of_rows([]) == {"final_sr": None, "peak_sr": None, "sr_at_end": None}
    b = block([v, {"final_sr": 0.6, "peak_sr": 0.7, "sr_at_end": 0.3}, values_of_rows([])])
    assert b["n"] == 2 and set(b) == {"n", "final_sr", "peak_sr", "sr_at_end"}
    assert b["final_sr"]["mean"] == pytest.approx(0.7) and b["sr_at_end"]["max"] == 0.5


def test_runs_group_by_config_but_the_seed(tmp_path):
    runs = tmp_path / "runs"
    a = [make_run(runs, "a", [0.2, 0.5 + 0.01 * s], seed=s, gamma=0.8) for s in range(3)]
    b = [make_run(runs, "b", [0.2, 0.4], seed=s, gamma=0.99) for s in range(2)]
    groups = group_runs(a + b)
    assert [len(g.run_dirs) for g in groups] == [3, 2]
    assert [g.label for g in groups] == ["gae-ppo gamma=0.8", "gae-ppo gamma=0.99"]
    bd = band([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in a)
    assert bd["iterations"] == [0, 1] and bd["iqm"][1] == pytest.approx(0.51)
    assert bd["low"][1] <= bd["iqm"][1] <= bd["high"][1] and bd["low"][0] == bd["high"][0] == 0.2


# --- where they show -------------------------------------------------------------------------

def test_sweep_json_has_a_statistics_block_per_grid_point_over_8_seeds(env):
    r = invoke("sweep", "gae-ppo", *NO_LADDER, "--seeds", "0-7", "--grid", "gamma=0.95,0.99", "--parallel", "2",
               "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["points"]) == 2
    for pt in out["points"]:
        assert pt["n"] == 8
        for m in ("final_sr", "peak_sr", "sr_at_end"):
            s = pt[m]
            assert s["n"] == 8 and set(s) >= {"mean", "iqm", "median", "min", "max", "ci95"}
            lo, hi = s["ci95"]
            assert s["min"] <= lo <= s["iqm"] <= hi <= s["max"]
            assert lo < hi  # the seeds spread, so does the interval
    hi_pt = next(p for p in out["points"] if p["point"] == {"gamma": "0.99"})
    finals = sorted(min(1.0, 0.3 + 0.36 + 0.1 + 0.01 * ((s * 5) % 8)) for s in range(8))
    assert hi_pt["final_sr"]["iqm"] == pytest.approx(sum(finals[2:6]) / 4)
    text = invoke("sweep", "gae-ppo", *NO_LADDER, "--seeds", "0-2", "--gamma", "0.99")
    assert text.exit_code == 0 and "95% bootstrap CI" in text.stdout and "[" in text.stdout


def test_compare_group_table_json_and_a_figure_with_bands(env, tmp_path):
    from PIL import Image

    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    a = [make_run(runs, "a", [0.2, 0.5, 0.7 + 0.03 * s], seed=s, gamma=0.8) for s in range(4)]
    b = [make_run(runs, "b", [0.2, 0.3, 0.4 + 0.02 * s], seed=s, gamma=0.99) for s in range(4)]
    single = make_run(runs, "c", [0.1, 0.2, 0.3], seed=0, gamma=0.9)
    names = [d.name for d in a + b + [single]]
    j = invoke("compare", *names, "--group", "--json")
    assert j.exit_code == 0, j.output
    out = json.loads(j.stdout)
    assert [(g["label"], g["n"]) for g in out["groups"]] == [("gae-ppo gamma=0.8", 4), ("gae-ppo gamma=0.99", 4),
                                                             ("gae-ppo gamma=0.9", 1)]
    assert out["groups"][0]["final_sr"]["iqm"] == pytest.approx(0.745)
    first = out["pairs"][0]
    assert first["x"] == "gae-ppo gamma=0.8" and first["p_improve"]["p"] == 1.0
    t = invoke("compare", *names, "--group")
    assert "gae-ppo gamma=0.99" in t.stdout and "P(final SR of gae-ppo gamma=0.8 > gae-ppo gamma=0.99)" in t.stdout
    assert "a-s0" not in t.stdout  # the legend and table name configurations, not run folders

    def band_pixels(png: Path) -> float:
        with Image.open(png) as im:
            px = np.asarray(im.convert("RGB")).astype(int)
        # C0 (31, 119, 180) at alpha 0.2 on white: about (210, 228, 240)
        near = (np.abs(px - np.array([210, 228, 240])).max(axis=-1) <= 6)
        return near.mean()

    grouped, plain = tmp_path / "g.png", tmp_path / "p.png"
    r = invoke("compare", *names, "--group", "--out", str(grouped), "--dpi", "300")
    assert r.exit_code == 0, r.output and f"figure: {grouped}" in r.stdout
    with Image.open(grouped) as im:
        assert im.size == (2400, 1440)
    assert invoke("compare", *names, "--out", str(plain)).exit_code == 0
    assert band_pixels(grouped) > 0.005 > band_pixels(plain)
    svg = tmp_path / "g.svg"
    assert invoke("compare", *names, "--group", "--out", str(svg)).exit_code == 0
    text = svg.read_text()
    assert "gae-ppo gamma=0.8 (n=4)" in text and "bootstrap" in text and "success rate (%" in text
    bad = invoke("compare", *names, "--group", "--out", str(tmp_path / "x.png"), "--dpi", "5")
    assert bad.exit_code == 2 and "--dpi 5" in bad.stderr and not (tmp_path / "x.png").exists()
