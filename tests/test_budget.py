"""`playground budget` (the seed's Phase 1c): budgets parsed, statistics per (arm, budget), the
figure written, and one tiny end-to-end experiment whose offline->online runs start from the
offline run's own policy."""
from __future__ import annotations

import json

import pytest

from engine import checkpoints as ck
from engine.launcher import BudgetError, parse_budgets, run_budget, save_budget_figure
from engine.launcher.budget import mean_ci, summarize
from engine.records import read_status


def test_parse_budgets():
    assert parse_budgets("50k, 10000,25k,10k") == [10000, 25000, 50000]
    for bad in ("", "ten", "0", "-5k"):
        with pytest.raises(BudgetError) as e:
            parse_budgets(bad)
        assert "--budgets" in str(e.value)


def test_mean_ci_and_summary():
    assert mean_ci([])["mean"] is None and mean_ci([])["ci95"] is None
    one = mean_ci([0.5])
    assert (one["n"], one["mean"], one["iqm"], one["ci95"]) == (1, 0.5, 0.5, None)
    r = mean_ci([0.342, 0.312, 0.386])          # the offline arm of a real budget run (3 seeds)
    assert r["mean"] == pytest.approx(0.34667, abs=1e-4)
    # the bootstrap CI of the IQM stays inside the seeds' range (a Student-t interval was [0.254, 0.439]
    # here, and at 50k online steps [0.40, 1.09]: beyond a success rate's range)
    assert 0.312 <= r["ci95"][0] <= r["iqm"] <= r["ci95"][1] <= 0.386
    runs = [{"arm": "online", "budget": 10, "final_sr": 0.5}, {"arm": "offline", "budget": 0, "final_sr": 0.4},
            {"arm": "online", "budget": 10, "final_sr": 0.7}, {"arm": "offline->online", "budget": 10, "final_sr": None}]
    pts = summarize(runs)
    assert [(p["arm"], p["budget"], p["n"]) for p in pts] == [("offline", 0, 1), ("online", 10, 2),
                                                             ("offline->online", 10, 0)]


def test_figure_is_written(tmp_path):
    pts = [{"arm": "offline", "budget": 0, "n": 2, "mean": 0.6, "ci95": [0.5, 0.7]},
           {"arm": "online", "budget": 10000, "n": 2, "mean": 0.7, "ci95": [0.6, 0.8]},
           {"arm": "offline->online", "budget": 10000, "n": 2, "mean": 0.8, "ci95": None}]
    out = save_budget_figure(pts, tmp_path / "b.svg")
    assert out.read_text().lstrip().startswith("<?xml") and "offline-&gt;online" in out.read_text()
    with pytest.raises(Exception) as e:
        save_budget_figure(pts, tmp_path / "b.txt")
    assert "--out" in str(e.value)


def test_tiny_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.SHIPPED_LADDERS_ENV, "1")
    tiny = {"num_envs": "10", "num_steps": "50", "num_eval_envs": "20", "mc_samples": "1", "update_epochs": "1",
            "num_minibatches": "5"}
    res = run_budget(online_preset="online-mc16-awr", offline_preset="offline-mc16-awr", budgets=[500, 1000],
                     seeds=[0], runs_dir=tmp_path / "runs", parallel=2, online_overrides=tiny,
                     offline_overrides={**tiny, "num_iterations": "1"}, on_event=lambda m: None)
    arms = sorted((r["arm"], r["budget"]) for r in res["runs"])
    assert arms == [("offline", 0), ("offline->online", 500), ("offline->online", 1000), ("online", 500),
                    ("online", 1000)]
    assert all(r["status"] == "done" and 0 <= r["final_sr"] <= 1 for r in res["runs"]), res["runs"]
    runs = {(r["arm"], r["budget"]): tmp_path / "runs" / r["run"] for r in res["runs"]}
    off = runs[("offline", 0)]
    cfg = (runs[("offline->online", 500)] / "config.toml").read_text()
    assert str(off / "checkpoints" / "latest.pt") in cfg                 # starts from the offline policy
    assert "total_timesteps = 1000" in (runs[("online", 1000)] / "config.toml").read_text()
    assert read_status(off)["status"] == "done"
    on_disk = json.loads(open(res["json"]).read())
    assert on_disk["points"] == res["points"] and len(res["points"]) == 5
