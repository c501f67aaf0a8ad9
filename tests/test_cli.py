"""The `playground` command line: exit codes, one-line messages for bad input, JSON shapes,
charts, and runs driven end to end (a fake worker for speed, the real one once).

Most tests drive the typer app in-process (typer's CliRunner); the interrupt and console-script
tests run `python -m engine.cli` style subprocesses through `engine.cli.app:main`.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.config.schema import RunConfig
from engine.launcher import prepare_run
from engine.records import read_status, write_status

ROOT = Path(__file__).resolve().parents[1]
PRESET = "online-mc16-awr"
# a config that needs no checkpoint ladder, for runs driven by the fake worker
NO_LADDER = ["--checkpoint", "none", "--critic_checkpoint", "none", "--optimal_checkpoint", "none",
             "--data_checkpoint", "none"]


def _fake_worker_module():
    spec = importlib.util.spec_from_file_location("_launcher_tests", Path(__file__).with_name("test_launcher.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FAKE = _fake_worker_module()


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A hermetic environment: empty checkpoint dir, runs and experiment log under tmp_path,
    the fake worker in place of `python -m engine`."""
    worker = FAKE.write_fake_worker(tmp_path)
    e = {"PLAYGROUND_RUNS_DIR": str(tmp_path / "runs"), "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"),
         "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md"), "PLAYGROUND_WORKER": " ".join(worker),
         "PLAYGROUND_DEBUG": "", "COLUMNS": "120"}
    for k, v in e.items():
        monkeypatch.setenv(k, v)
    return e


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def make_run(runs: Path, name: str, srs: list[float], status: str = "done", **cfg) -> Path:
    c = RunConfig(checkpoint="none", exp_name=name, preset="gae-ppo", num_envs=10, num_steps=100,
                  total_timesteps=1000 * max(1, len(srs) - 1), **cfg)
    d = prepare_run(c, [], runs_dir=runs, name=name)
    with open(d / "metrics.jsonl", "w") as f:
        for i, sr in enumerate(srs):
            f.write(json.dumps({"iteration": i, "env_steps": 1000 * i, "wall_s": 2.0 * i, "sr": sr,
                                "sr_at_end": sr / 2}) + "\n")
    write_status(d, status, pid=None, started="2026-01-01T00:00:00+00:00", exit_code=0 if status == "done" else 1)
    return d


# --- unusable input: exit 2, one clear line per problem, no traceback ----------------------

def test_unknown_preset_suggests_the_nearest_name(env):
    r = invoke("check", "online-mc16-aw")
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and "unknown preset 'online-mc16-aw'" in lines[0] and "online-mc16-awr" in lines[0]
    assert "Traceback" not in r.output


def test_override_flag_without_value(env):
    r = invoke("check", PRESET, "--gamma")
    assert r.exit_code == 2
    assert error_lines(r) == ["error: key 'gamma': --gamma needs a value: --gamma VALUE"]


def test_unknown_key_with_did_you_mean(env):
    r = invoke("run", PRESET, "--gama", "0.9")
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and "--gama" in lines[0] and "did you mean --gamma" in lines[0]


def test_every_problem_is_reported(env):
    r = invoke("check", PRESET, "--mc_samples", "0", "--gamma", "2")
    assert r.exit_code == 2
    text = "\n".join(error_lines(r))
    assert len(error_lines(r)) == 2 and "mc_samples" in text and "gamma" in text


def test_runs_dir_not_writable(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = invoke("--runs-dir", str(blocker / "runs"), "run", PRESET)
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and "runs directory" in lines[0] and "--runs-dir" in lines[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_runs_dir_without_write_permission(env, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = invoke("--runs-dir", str(ro), "run", PRESET)
        assert r.exit_code == 2 and "not writable" in error_lines(r)[0]
    finally:
        ro.chmod(0o700)


def test_bad_run_reference(env):
    r = invoke("show", "nothing-like-this")
    assert r.exit_code == 2 and "no run matches 'nothing-like-this'" in error_lines(r)[0]


def test_bad_env_id(env):
    r = invoke("checkpoints", "--env", "mujoco:Ant")
    assert r.exit_code == 2 and "unknown env id" in error_lines(r)[0]


def test_internal_errors_are_one_line_unless_debugging(env, monkeypatch):
    import engine.cli.runs_cmd as rc

    def boom(*a, **k):
        raise RuntimeError("kaput")

    monkeypatch.setattr(rc, "list_runs", boom)
    r = invoke("runs")
    assert r.exit_code == 70
    assert "internal error: RuntimeError: kaput" in r.stderr and "PLAYGROUND_DEBUG=1" in r.stderr
    assert "Traceback" not in r.output
    monkeypatch.setenv("PLAYGROUND_DEBUG", "1")
    with pytest.raises(RuntimeError, match="kaput"):
        invoke("runs")


# --- check ---------------------------------------------------------------------------------

def test_check_json_shape_and_exit_codes(env):
    r = invoke("check", PRESET, *NO_LADDER, "--deterministic_eval", "false", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert set(out) == {"ok", "findings"} and out["ok"] is False
    ids = [f["id"] for f in out["findings"]]
    assert "KB02" in ids
    for f in out["findings"]:
        assert set(f) == {"id", "severity", "title", "why", "fix"}
        assert f["severity"] in ("error", "warning") and isinstance(f["fix"], dict)
    kb02 = next(f for f in out["findings"] if f["id"] == "KB02")
    assert kb02["fix"] == {"deterministic_eval": True}

    ok = invoke("check", PRESET, *NO_LADDER, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True


def test_check_prints_findings_with_fix_flags(env):
    r = invoke("check", "gae-ppo", *NO_LADDER, "--update_epochs", "20", "--target_kl", "0.1")
    assert r.exit_code == 1
    assert "KB03 error:" in r.stdout and "why:" in r.stdout and "fix: --target_kl 100.0" in r.stdout


def test_check_json_problems_are_json_too(env):
    r = invoke("check", "no-such-preset", "--json")
    assert r.exit_code == 2
    out = json.loads(r.stdout)
    assert out["ok"] is False and "unknown preset" in out["errors"][0]


# --- presets / checkpoints / runs / show / compare -----------------------------------------

def test_presets_json(env):
    r = invoke("presets", "--json")
    assert r.exit_code == 0
    names = {p["name"] for p in json.loads(r.stdout)}
    assert {"online-mc16-awr", "onpolicy-mc16-awr", "gae-ppo", "offline-mc16-awr", "iql-awr-offline"} <= names


def test_checkpoints_of_an_env_without_a_ladder(env):
    r = invoke("checkpoints")
    assert r.exit_code == 0 and "playground pretrain --env pickcube-lite" in r.stdout
    j = invoke("checkpoints", "--json")
    assert json.loads(j.stdout)["roles"] == []


def test_runs_json_lists_every_run(env):
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    make_run(runs, "first", [0.4, 0.6, 0.5])
    make_run(runs, "second", [0.4, 0.8], status="failed")
    r = invoke("runs", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert [x["exp_name"] for x in rows] == ["first", "second"]
    first = rows[0]
    for k in ("id", "preset", "status", "iteration", "env_steps", "last_sr", "peak_sr", "started"):
        assert k in first
    assert (first["status"], first["iteration"], first["env_steps"], first["last_sr"], first["peak_sr"]) == \
           ("done", 2, 2000, 0.5, 0.6)
    table = invoke("runs")
    assert table.exit_code == 0 and "first" in table.stdout and "60.0%" in table.stdout


def test_show_draws_a_chart_and_a_table(env):
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    d = make_run(runs, "charted", [0.2, 0.5, 0.9, 0.7])
    r = invoke("show", d.name[:17])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "SR vs env steps" in out and "100%┤" in out and "  0%┤" in out and "env steps" in out
    assert "*" in out and "per-iteration results" in out and "90.0%" in out
    assert "seed's SR (gae-ppo): 93.2%" in out  # the preset's expected SR, drawn as a line
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal


def test_compare_two_runs(env):
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    a = make_run(runs, "cmp-a", [0.2, 0.5, 0.9], gamma=0.8)
    b = make_run(runs, "cmp-b", [0.2, 0.3, 0.4], gamma=0.99)
    r = invoke("compare", a.name, str(b))
    assert r.exit_code == 0, r.output
    assert "** " in r.stdout and "oo " in r.stdout and "config differences" in r.stdout and "gamma" in r.stdout
    one = invoke("compare", a.name)
    assert one.exit_code == 2


def test_compare_out_writes_a_png_and_an_svg(env, tmp_path):
    from PIL import Image

    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    a = make_run(runs, "fig-a", [0.2, 0.5, 0.9, 0.8])
    b = make_run(runs, "fig-b", [0.1, 0.3, 0.4, 0.6])
    png = tmp_path / "figs" / "x.png"
    r = invoke("compare", a.name, b.name, "--out", str(png))
    assert r.exit_code == 0, r.output
    assert f"figure: {png}" in r.stdout
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (800, 480)
        px = im.convert("L")
        lo, hi = px.getextrema()
        assert hi - lo > 100  # not blank: dark curves, axes and text on white
        dark = sum(px.histogram()[:128])
        assert 0.002 < dark / (im.size[0] * im.size[1]) < 0.5
    svg = tmp_path / "x.svg"
    assert invoke("compare", a.name, b.name, "--out", str(svg), "--json").exit_code == 0
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "fig-a" in text and "93.2%" in text  # legend, expected SR
    bad = invoke("compare", a.name, b.name, "--out", str(tmp_path / "x.gif"))
    assert bad.exit_code == 2 and ".png" in bad.stderr and not (tmp_path / "x.gif").exists()


def test_stop_of_a_finished_run(env):
    d = make_run(Path(env["PLAYGROUND_RUNS_DIR"]), "over", [0.5])
    r = invoke("stop", d.name)
    assert r.exit_code == 0 and "already ended done" in r.stdout


def test_no_arguments_and_tui_call_the_one_tui_entry_point(env, monkeypatch, tmp_path):
    """`playground` and `playground tui` call `tui.app.run(runs_dir)` and exit with its code."""
    import types

    calls = []
    fake = types.ModuleType("tui.app")
    fake.run = lambda runs_dir: calls.append(Path(runs_dir)) or 5
    monkeypatch.setitem(sys.modules, "tui.app", fake)
    assert invoke().exit_code == 5 and invoke("tui").exit_code == 5
    assert invoke("--runs-dir", str(tmp_path / "elsewhere"), "tui").exit_code == 5
    assert calls == [Path(env["PLAYGROUND_RUNS_DIR"])] * 2 + [tmp_path / "elsewhere"]


def test_tui_missing_is_one_line_and_exit_2(env, monkeypatch):
    monkeypatch.setitem(sys.modules, "tui.app", None)  # import tui.app fails as if it were not installed
    for args in ([], ["tui"]):
        r = invoke(*args)
        assert r.exit_code == 2
        assert r.stderr.strip().count("\n") == 0 and "not installed" in r.stderr and "playground --help" in r.stderr


# --- run / sweep with the fake worker ------------------------------------------------------

def test_run_follows_to_done_and_records_the_command(env):
    r = invoke("run", "gae-ppo", *NO_LADDER, "--gamma", "0.99", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert "iter 2/" in r.stdout and "peak SR" in r.stdout and "playground show" in r.stdout
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    (d,) = [p for p in runs.iterdir() if p.is_dir()]
    assert read_status(d)["status"] == "done"
    import tomllib

    conf = tomllib.loads((d / "config.toml").read_text())
    assert conf["preset"] == "gae-ppo" and conf["seed"] == 3 and conf["gamma"] == 0.99
    assert conf["command"].startswith("playground run gae-ppo --checkpoint none") and "--seed 3" in conf["command"]
    assert json.loads((d / "findings.json").read_text()) == []


def test_run_json_is_pure_json(env):
    r = invoke("run", "gae-ppo", *NO_LADDER, "--gamma", "0.99", "--json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["run"]["status"] == "done" and out["run"]["iteration"] == 2


def test_run_refused_by_error_findings_unless_forced(env):
    r = invoke("run", "gae-ppo", *NO_LADDER, "--deterministic_eval", "false")
    assert r.exit_code == 3
    assert "KB02 error" in r.stdout and "refused" in r.stderr and "--force" in r.stderr
    assert not Path(env["PLAYGROUND_RUNS_DIR"]).exists() or not any(Path(env["PLAYGROUND_RUNS_DIR"]).iterdir())
    forced = invoke("run", "gae-ppo", *NO_LADDER, "--deterministic_eval", "false", "--force")
    assert forced.exit_code == 0
    (d,) = [p for p in Path(env["PLAYGROUND_RUNS_DIR"]).iterdir() if p.is_dir()]
    assert [f["id"] for f in json.loads((d / "findings.json").read_text())][0] == "KB02"


def test_run_without_a_ladder_and_no_pretrain_names_the_command(env):
    r = invoke("run", PRESET, "--no-pretrain")
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and "playground pretrain --env pickcube-lite" in lines[0]


def test_failed_worker_exit_1(env, monkeypatch, tmp_path):
    died = tmp_path / "died.py"
    died.write_text("import sys; print('worker crashed: boom', file=sys.stderr); sys.exit(5)\n")
    monkeypatch.setenv("PLAYGROUND_WORKER", f"{sys.executable} {died}")
    r = invoke("run", "gae-ppo", *NO_LADDER, "--gamma", "0.99")
    assert r.exit_code == 1
    assert "failed" in r.stdout and "boom" in r.stdout


def test_detach_then_stop(env, monkeypatch):
    monkeypatch.setenv("FAKE_WORKER_OPTS", json.dumps({"iters": 10_000, "sleep": 0.05}))
    r = invoke("run", "gae-ppo", *NO_LADDER, "--gamma", "0.99", "--detach", "--json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    d = Path(out["run_dir"])
    FAKE.wait_for(lambda: (read_status(d) or {}).get("status") == "running")
    listed = json.loads(invoke("runs", "--json").stdout)
    assert [x["status"] for x in listed] == ["running"]
    s = invoke("stop", out["run_id"][:20])
    assert s.exit_code == 0, s.output
    st = read_status(d)
    assert st["status"] == "stopped" and st["exit_code"] == 143
    try:  # the detached worker is a child of this test process: reap it
        os.waitpid(out["pid"], 0)
    except ChildProcessError:
        pass


def test_sweep_runs_seeds_times_grid_and_prints_mean_std(env):
    r = invoke("sweep", "gae-ppo", *NO_LADDER, "--seeds", "0-1", "--grid", "gamma=0.95,0.99", "--parallel", "2")
    assert r.exit_code == 0, r.output
    assert "gamma=0.95" in r.stdout and "gamma=0.99" in r.stdout and "±" in r.stdout
    runs = [p for p in Path(env["PLAYGROUND_RUNS_DIR"]).iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 4 and all(read_status(p)["status"] == "done" for p in runs)
    j = invoke("sweep", "gae-ppo", *NO_LADDER, "--seeds", "0", "--grid", "gamma=0.95,0.99", "--json")
    out = json.loads(j.stdout)
    assert j.exit_code == 0 and len(out["points"]) == 2 and out["points"][0]["n_done"] == 1
    assert out["points"][0]["peak_sr_mean"] == pytest.approx(0.7)


def test_sweep_bad_arguments(env):
    assert invoke("sweep", "gae-ppo", "--seeds", "4-1").exit_code == 2
    r = invoke("sweep", "gae-ppo", *NO_LADDER, "--grid", "gama=0.9,0.8")
    assert r.exit_code == 2 and "did you mean" in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_sweep_ray_backend_without_ray(env):
    r = invoke("sweep", "gae-ppo", "--backend", "ray")
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and "ray" in lines[0] and "not installed" in lines[0]


# --- the console script in a subprocess ----------------------------------------------------

def test_ctrl_c_stops_the_worker_cleanly_and_exits_130(env):
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    senv = {**os.environ, **env, "FAKE_WORKER_OPTS": json.dumps({"iters": 10_000, "sleep": 0.05})}
    # SIGINT at its default, as in a terminal (pytest started from a background shell passes it on ignored)
    p = subprocess.Popen([sys.executable, "-c", "from engine.cli.app import main; main()", "run", "gae-ppo",
                          *NO_LADDER, "--gamma", "0.99"], cwd=ROOT, env=senv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        d = FAKE.wait_for(lambda: next((x for x in runs.iterdir() if x.is_dir()), None) if runs.exists() else None,
                          timeout=60)
        FAKE.wait_for(lambda: len((d / "metrics.jsonl").read_text().splitlines()) >= 2
                      if (d / "metrics.jsonl").exists() else False, timeout=60)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    st = read_status(d)
    assert st["status"] == "stopped" and st["exit_code"] == 143
    assert "interrupted: stopping the worker" in err and "stopped" in out
    assert not FAKE.pid_alive(st["pid"])


def test_console_script_with_the_real_worker(tmp_path):
    """`playground run` end to end with `python -m engine`: a tiny GAE PPO run."""
    e = {"PLAYGROUND_RUNS_DIR": str(tmp_path / "runs"), "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"),
         "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md")}
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_WORKER"}
    env.update(e)
    p = subprocess.run([sys.executable, "-c", "from engine.cli.app import main; main()", "run", "gae-ppo",
                        *NO_LADDER, "--num_envs", "8", "--num_steps", "10", "--total_timesteps", "160",
                        "--update_epochs", "1", "--num_minibatches", "2", "--num_eval_envs", "8", "--gamma", "0.99",
                        "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["run"]["status"] == "done" and out["run"]["iteration"] == 2 and out["run"]["env_steps"] == 160
    assert "online-gae-ppo-g0.99" in (tmp_path / "log.md").read_text()


def test_run_builds_a_missing_ladder_first_and_says_so(env, monkeypatch):
    """A needed ladder role is missing: `run` pretrains that env first, as a job in its own
    process with a run directory (the real job around a stand-in for the minutes-long
    run_pretrain: tests/fake_pretrain.py), shows its progress, then runs."""
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}")
    runs = Path(env["PLAYGROUND_RUNS_DIR"])

    def jobs() -> list[Path]:
        return sorted(p for p in runs.iterdir() if "-pretrain-" in p.name) if runs.exists() else []

    r = invoke("run", PRESET, "--total_timesteps", "15000")
    assert r.exit_code == 0, r.output
    (job,) = jobs()
    assert read_status(job)["status"] == "done"
    assert "building its checkpoint ladder first" in r.stdout and "playground pretrain --env pickcube-lite" in r.stdout
    assert "PPO iter 2/2" in r.stdout and "ladder: start = iteration 1" in r.stdout
    table = invoke("checkpoints")
    assert table.exit_code == 0 and "ckpt_76_logstd-1.5" in table.stdout and "45.0%" in table.stdout
    j = json.loads(invoke("checkpoints", "--json").stdout)
    assert [x["role"] for x in j["roles"]] == ["start", "expert", "optimal", "critic-expert", "critic-optimal"]
    again = invoke("run", PRESET, "--total_timesteps", "15000")  # the ladder exists now: no pretraining
    assert again.exit_code == 0 and len(jobs()) == 1
    built = invoke("pretrain")
    assert built.exit_code == 0 and len(jobs()) == 2 and "checkpoint ladder of pickcube-lite" in built.stdout
    listed = {x["id"]: x for x in json.loads(invoke("runs", "--json").stdout)}
    assert listed[jobs()[0].name]["preset"] == "pretrain" and listed[jobs()[0].name]["peak_sr"] == 0.6
    shown = invoke("show", jobs()[0].name)
    assert shown.exit_code == 0 and "pretraining the checkpoint ladder of pickcube-lite" in shown.stdout
    table = shown.stdout[shown.stdout.index("per-iteration results"):]
    assert table.count("│") == 2 * 6  # two PPO iteration rows of 5 columns (the ladder rows are not iterations)
    assert "ladder: critic-optimal = iteration 1 (critic fitted on optimal, R^2 0.900)" in shown.stdout


def test_pretrain_failure_and_json(env, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}")
    monkeypatch.setenv("FAKE_PRETRAIN", json.dumps({"fail": True}))
    r = invoke("pretrain")
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert "ended failed" in line and "fake pretraining failed" in line
    monkeypatch.setenv("FAKE_PRETRAIN", "{}")
    j = invoke("pretrain", "--json")
    assert j.exit_code == 0 and [x["role"] for x in json.loads(j.stdout)["roles"]] == ["start", "expert", "optimal", "critic-expert", "critic-optimal"]
    assert "PPO iter" in j.stderr
    assert invoke("pretrain", "--env", "nope").exit_code == 2


def test_progress_view_on_a_terminal_shows_a_bar_eta_and_sr(tmp_path):
    """What `run` / `pretrain` draw on a terminal (rich Live): a progress bar, i/N, SR now,
    peak and ETA; and the plain line pipes and CI get instead."""
    from rich.console import Console

    from engine.cli.live import ProgressView
    from engine.launcher import Event, RunProgress

    d = make_run(tmp_path, "live", [], status="running")  # 10 envs x 100 steps, 1000 steps: 1 planned
    prog = RunProgress(d, planned=10)
    view = ProgressView(prog)
    prog.add(Event("status", {"status": "running"}))
    for i, sr in enumerate([0.2, 0.7, 0.5], start=1):
        prog.add(Event("metrics", {"iteration": i, "env_steps": 1000 * i, "wall_s": 3.0 * i, "sr": sr}))
    con = Console(record=True, width=100, force_terminal=True, color_system="truecolor")
    con.print(view.render())
    text = con.export_text()
    assert "━" in text and "3/10" in text and "SR 50.0%" in text and "peak 70.0%" in text and "ETA 0:21" in text
    assert "running" in text
    assert view.plain_line() == "iter 3/10  env steps 3,000  SR 50.0%  peak 70.0% @ 2,000  wall 0:09  ETA 0:21"
    job = ProgressView(RunProgress(conf={"kind": "pretrain", "env": "pickcube-lite"}), pretrain=True)
    job.prog.add_row({"phase": "ppo", "iteration": 1, "iterations": 4, "env_steps": 10, "wall_s": 1.0, "sr": 0.25})
    job.prog.add_row({"phase": "ladder", "role": "start", "iteration": 1, "det_sr": 0.4, "stoch_sr": 0.2})
    assert job.plain_line().startswith("pretraining pickcube-lite: PPO iter 1/4") and "ETA 0:03" in job.plain_line()
    assert job.note_line(job.prog.notes[0]) == "  ladder: start = iteration 1 (det SR 40.0%, stoch SR 20.0%)"


def test_pretrain_follows_a_job_already_running_for_the_env(env, monkeypatch):
    """A second front door joins the live pretraining job of an env instead of starting another."""
    from engine.launcher import start_pretrain

    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}")
    monkeypatch.setenv("FAKE_PRETRAIN", json.dumps({"iters": 8, "sleep": 0.3}))
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    proc = start_pretrain("pickcube-lite", runs_dir=runs)
    try:
        FAKE.wait_for(lambda: (read_status(proc.run_dir) or {}).get("status") == "running", timeout=60)
        r = invoke("pretrain")
        assert r.exit_code == 0, r.output
        assert f"already running as {proc.run_dir.name}: following it" in r.stdout and "PPO iter 8/8" in r.stdout
        assert [p.name for p in runs.iterdir()] == [proc.run_dir.name]
    finally:
        proc.stop(5)


def test_reproduce_builds_the_ladder_then_plans_every_row_through_the_core(env, monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}")
    out = tmp_path / "results.md"
    r = invoke("reproduce", "--only", "online-mc16-awr,gae-ppo", "--seeds", "2", "--quick", "--parallel", "2",
               "--out", str(out))
    assert r.exit_code == 0, r.output
    runs = sorted(p.name.split("-", 2)[-1] for p in Path(env["PLAYGROUND_RUNS_DIR"]).iterdir())
    assert runs == ["pretrain-pickcube-lite", "reproduce-gae-ppo-s0", "reproduce-gae-ppo-s1",
                    "reproduce-online-mc16-awr-s0", "reproduce-online-mc16-awr-s1"]
    text = out.read_text()
    assert "`online-mc16-awr`" in text and "`gae-ppo`" in text
    assert "playground run online-mc16-awr --env pickcube-lite --seed 1 --total_timesteps 15000" in text
    d = next(Path(env["PLAYGROUND_RUNS_DIR"]).glob("*-reproduce-gae-ppo-s1"))
    import tomllib

    conf = tomllib.loads((d / "config.toml").read_text())
    assert conf["seed"] == 1 and conf["preset"] == "gae-ppo" and conf["checkpoint"].endswith("start.pt")
    assert conf["command"].startswith("playground run gae-ppo --env pickcube-lite --seed 1")


def test_sweep_builds_a_missing_ladder_once_then_runs_every_seed(env, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}")
    r = invoke("sweep", PRESET, "--seeds", "0-1", "--parallel", "2", "--total_timesteps", "15000")
    assert r.exit_code == 0, r.output
    names = sorted(p.name.split("-", 2)[-1] for p in Path(env["PLAYGROUND_RUNS_DIR"]).iterdir()
                   if not p.name.startswith("."))  # .sweep-<id>.json: the sweep record (sweep --resume)
    runs = [n for n in names if n != "pretrain-pickcube-lite"]
    assert len(names) == 3 and [n[-3:] for n in runs] == ["-s0", "-s1"]
    assert "building its checkpoint ladder first" in r.stdout
    nope = invoke("sweep", "gae-ppo", "--seeds", "0", "--no-pretrain", "--env", "maniskill:PickCube-v1")
    assert nope.exit_code == 2 and "playground pretrain --env maniskill:PickCube-v1" in nope.stderr
