"""The launch core (engine.launcher.plan / progress, engine.errors): planning a run or a sweep
without any front door, one error base, one peak-SR definition, progress state."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config.schema import RunConfig
from engine.errors import UserError
from engine.launcher import (Event, LaunchRefused, MissingCheckpoints, RunProgress, launch, list_runs, peak, peak_sr,
                             plan_run, plan_sweep, prepare_run, summarize_run)
from engine.records import read_status, write_status

NO_LADDER = {"checkpoint": "none", "critic_checkpoint": "none", "optimal_checkpoint": "none",
             "data_checkpoint": "none"}


def test_every_user_input_error_is_a_user_error():
    from engine.analysis.ranking import AnalysisError
    from engine.checkpoints import CheckpointError
    from engine.config.loading import ConfigError, Problem
    from engine.envs import EnvError
    from engine.launcher.follow import RunDeleted
    from engine.launcher.sweep import SweepError
    from engine.records import RecordError

    for cls in (ConfigError, CheckpointError, EnvError, RecordError, SweepError, RunDeleted, AnalysisError,
                LaunchRefused, MissingCheckpoints):
        assert issubclass(cls, UserError), cls
    assert issubclass(RecordError, OSError) and issubclass(EnvError, ValueError)  # old bases kept
    e = ConfigError([Problem("unknown key", key="gama"), Problem("bad value\n  on two lines", file="p.toml")])
    assert str(e).splitlines()[0] == "key 'gama': unknown key"
    assert e.lines() == ["key 'gama': unknown key", "p.toml: bad value on two lines"]
    assert UserError("one").lines() == ["one"] and UserError(["a", "b"]).problems == ["a", "b"]


def test_peak_is_the_first_row_with_the_highest_sr():
    rows = [{"iteration": 0, "env_steps": 0, "sr": 0.2}, {"iteration": 1, "env_steps": 100, "sr": 0.9},
            {"iteration": 2, "env_steps": 200, "sr": 0.9}, {"iteration": 3, "env_steps": 300, "sr": True},
            {"iteration": 4, "env_steps": 400}]
    p = peak(rows)
    assert (p.sr, p.iteration, p.env_steps) == (0.9, 1, 100)
    assert peak_sr([]) is None and peak([]).iteration is None


def test_run_progress_state_eta_and_notes():
    prog = RunProgress(conf={"regime": "offline", "num_iterations": 10})
    assert prog.planned == 10 and prog.state == "starting" and prog.eta_s() is None
    prog.add(Event("status", {"status": "running"}))
    prog.add_row({"iteration": 0, "env_steps": 0, "wall_s": 0.1, "sr": 0.0, "phase": "initial"})  # the start's eval
    for i in range(3):
        prog.add(Event("metrics", {"iteration": i + 1, "env_steps": 100 * (i + 1), "wall_s": 2.0 * (i + 1),
                                   "sr": [0.5, 0.8, 0.6][i]}))
    prog.add_row({"phase": "ladder", "role": "start", "iteration": 7, "det_sr": 0.4})
    assert prog.rows[-1]["iteration"] == 3 and prog.notes[0]["role"] == "start"
    assert (prog.iteration, prog.env_steps, prog.sr, prog.peak_sr, prog.peak.iteration) == (3, 300, 0.6, 0.8, 2)
    assert prog.eta_s() == pytest.approx((6.0 - 0.1) / 3 * 7) and prog.fraction == pytest.approx(0.3)
    assert prog.series() == ([0.0, 100.0, 200.0, 300.0], [0.0, 0.5, 0.8, 0.6]) and len(prog.notes) == 1
    prog.add(Event("status", {"status": "done"}))
    assert prog.finished and prog.to_dict()["peak_sr"] == 0.8


def test_listing_uses_the_same_peak(tmp_path):
    c = RunConfig(checkpoint="none", exp_name="x", num_envs=10, num_steps=100, total_timesteps=3000)
    d = prepare_run(c, [], runs_dir=tmp_path, name="x")
    rows = [{"iteration": i, "env_steps": 1000 * i, "wall_s": i, "sr": sr, "sr_at_end": 0}
            for i, sr in enumerate([0.1, 0.7, 0.7, 0.3])]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_status(d, "done", exit_code=0)
    s = summarize_run(d)
    p = RunProgress.load(d)
    assert (s.peak_sr, s.peak_env_steps, s.last_sr, s.iteration) == (p.peak_sr, p.peak.env_steps, p.sr, p.iteration) \
        == (0.7, 1000, 0.3, 3)
    assert [r.id for r in list_runs(tmp_path)] == [d.name]


def test_plan_run_reports_findings_checkpoints_and_missing_roles(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    said = []
    p = plan_run("gae-ppo", {"update_epochs": "20", "target_kl": "0.1"}, on_progress=said.append)
    assert [f.id for f in p.errors] == ["KB03"] and p.errors[0].fix
    assert p.missing == [("checkpoint", "start"), ("critic_checkpoint", "critic-expert")]
    assert [(c.label, c.role, c.missing) for c in p.checkpoints] == [("start policy", "start", True),
                                                                   ("critic", "critic-expert", True)]
    assert p.expected_sr == pytest.approx(0.932) and said and all(isinstance(m, str) for m in said)
    with pytest.raises(MissingCheckpoints, match="playground pretrain --env pickcube-lite"):
        launch(p, runs_dir=tmp_path / "runs")
    fixed = plan_run("gae-ppo", ["--update_epochs", "20", "--target_kl", "0.1", *sum(
        ([f"--{k}", v] for k, v in NO_LADDER.items()), [])], seed=4)
    assert fixed.missing == [] and fixed.cfg.seed == 4
    with pytest.raises(LaunchRefused) as e:
        launch(fixed, runs_dir=tmp_path / "runs")
    assert "KB03" in str(e.value) and not (tmp_path / "runs").exists()
    with pytest.raises(UserError) as bad:
        plan_run("gae-pp", ["--gama", "0.9"])
    assert len(bad.value.lines()) == 2 and "did you mean --gamma" in bad.value.lines()[0]


def test_launch_writes_the_run_and_starts_its_worker(monkeypatch, tmp_path):
    import sys

    fake = tmp_path / "w.py"
    fake.write_text("import sys, json, pathlib\nd = pathlib.Path(sys.argv[sys.argv.index('--run-dir') + 1])\n"
                    "(d / 'status.json').write_text(json.dumps({'status': 'done', 'pid': None, 'exit_code': 0}))\n")
    monkeypatch.setenv("PLAYGROUND_WORKER", f"{sys.executable} {fake}")
    p = plan_run("gae-ppo", NO_LADDER)
    proc = launch(p, runs_dir=tmp_path / "runs", command="playground run gae-ppo")
    assert proc.wait(60) == 0
    assert read_status(proc.run_dir)["status"] == "done"
    assert 'command = "playground run gae-ppo"' in (proc.run_dir / "config.toml").read_text()
    assert p.cfg.command != "playground run gae-ppo"  # the plan itself is left as it was


def test_plan_sweep_dedupes_problems_and_names_jobs(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    sp = plan_sweep("gae-ppo", NO_LADDER, seeds="0-1", grid=["gamma=0.9,0.99"])
    assert [(r.point["gamma"], r.seed) for r in sp.runs] == [("0.9", 0), ("0.9", 1), ("0.99", 0), ("0.99", 1)]
    assert [(f.id, labels) for f, labels in sp.findings_by_id()] == [("KB10", ["gamma=0.9"])]
    jobs = sp.jobs(tmp_path / "runs")
    assert [j.seed for j in jobs] == [0, 1, 0, 1] and not (tmp_path / "runs").exists()
    d = jobs[3].prepare()
    assert d.name.endswith("-s1") and "0.99" in d.name
    with pytest.raises(UserError) as e:
        plan_sweep("gae-ppo", {"gama": "1"}, seeds=[0, 1], grid={"gamma": ["0.9", "0.8"]})
    assert len(e.value.lines()) == 1  # the same problem of every grid point, once
    with pytest.raises(UserError, match="both"):
        plan_sweep("gae-ppo", {"gamma": "0.9"}, seeds=[0], grid={"gamma": ["0.8"]})
    with pytest.raises(UserError, match="runs backwards"):
        plan_sweep("gae-ppo", seeds="4-1")


def test_the_experiment_log_and_the_history_rule_use_the_same_peak(tmp_path):
    """A bool `sr` (or a non-finite one) is no SR: before, the experiment log counted `true` as 1.0."""
    from engine.records import format_log_entry
    from engine.validate.history import _read_sr

    rows = [{"iteration": 1, "sr": 0.4}, {"iteration": 2, "sr": True}, {"iteration": 3, "sr": 0.1}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"iteration": 4, "sr": NaN}\n')
    entry = format_log_entry(tmp_path, {"exp_name": "x"}, {"status": "done"}, rows, [])
    assert "peak SR 0.400" in entry
    assert _read_sr(tmp_path) == (0.4, 4) and peak_sr(rows) == 0.4


def test_export_sr_overlay_writes_the_runs_figure(tmp_path):
    from engine.figures import curve_of_run, export_sr_overlay

    c = RunConfig(checkpoint="none", exp_name="curve", preset="online-mc16-awr")
    d = prepare_run(c, [], runs_dir=tmp_path, name="curve")
    (d / "metrics.jsonl").write_text("".join(json.dumps({"iteration": i, "env_steps": 500 * i, "sr": 0.2 * i}) + "\n"
                                             for i in range(4)) + '{"iteration": 4, "env_ste')  # a partial last line
    curve = curve_of_run(d)
    assert curve.env_steps == [0.0, 500.0, 1000.0, 1500.0] and curve.expected_sr == pytest.approx(0.991)
    svg = export_sr_overlay([d], tmp_path / "o.svg").read_text()
    assert "seed's SR for online-mc16-awr: 99.1%" in svg and "env steps" in svg
    with pytest.raises(UserError, match=r"\.png"):
        export_sr_overlay([d], tmp_path / "o.jpeg")
    empty = prepare_run(c, [], runs_dir=tmp_path, name="empty")
    with pytest.raises(UserError, match="nothing to draw"):
        export_sr_overlay([empty], tmp_path / "e.png")
