"""The Textual launcher driven headless with Textual's pilot (`App.run_test`): the launch screen
validates as the user edits (KB03 appears, its fix makes it go), a real tiny pickcube-lite run
is launched, followed (table and curve carry its SR) and stopped, runs outlive the window, and
user mistakes become messages on screen."""
from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from engine.config.schema import RunConfig
from engine.launcher import prepare_run
from engine.records import now_iso, read_status, write_status
from tui.app import PlaygroundApp
from tui.model import pct
from tui.screens.dialogs import ConfirmScreen, HelpScreen, QuitScreen
from tui.screens.launch import LaunchScreen
from tui.screens.monitor import MonitorScreen
from tui.widgets.sr_plot import SRPlot

# a real run that needs no checkpoint ladder and is cheap per iteration (and long enough to stop)
TINY = {"checkpoint": "none", "critic_checkpoint": "none", "num_envs": "8", "num_steps": "10",
        "total_timesteps": "400000", "update_epochs": "1", "num_minibatches": "2", "num_eval_envs": "8",
        "gamma": "0.99"}


def pilot_test(fn):
    """Run an async pilot test with asyncio (no pytest async plugin needed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


async def wait_for(pilot, cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def finding_ids(screen: LaunchScreen) -> list[str]:
    return [f.id for f in screen.plan.findings] if screen.plan else []


def shown_rules(screen: LaunchScreen) -> set[str]:
    """The rule ids the findings panel shows (its widgets' classes: rule-KB03 ...)."""
    return {c[5:] for w in screen.query(".finding") for c in w.classes if c.startswith("rule-")}


async def type_into(pilot, screen, key: str, text: str) -> None:
    """Focus a field, clear it and type `text` key by key, as a user would."""
    field = screen.query_one(f"#field-{key}", Input)
    field.focus()
    field.value = ""
    await pilot.press(*text)


async def choose_preset(pilot, app, name: str) -> LaunchScreen:
    screen = app.screen
    assert isinstance(screen, LaunchScreen)
    screen.select_preset(name)
    await wait_for(pilot, lambda: screen.plan is not None and screen.plan.preset == name and screen.plan_is_current,
                   what=f"preset {name} validated")
    return screen


def make_run(runs: Path, name: str, srs: list[float], status: str = "done", error: str | None = None,
             **cfg) -> Path:
    """A run record as the worker leaves it, with a fixed id (`20260101-000000-<name>`)."""
    c = RunConfig(**{"checkpoint": "none", "exp_name": name, "preset": "gae-ppo", "num_envs": 10, "num_steps": 100,
                     "total_timesteps": 1000 * 8, **cfg})
    d = prepare_run(c, [], runs_dir=runs, name=name)
    fixed = d.with_name(f"20260101-000000-{name}")
    d.rename(fixed)
    with open(fixed / "metrics.jsonl", "w") as f:
        for i, sr in enumerate(srs):
            f.write(json.dumps({"iteration": i, "env_steps": 1000 * i, "wall_s": 2.0 * i, "sr": sr,
                                "sr_at_end": sr / 2}) + "\n")
    (fixed / "engine.log").write_text("".join(f"2026-01-01 00:00:{i:02d} INFO iteration {i}: SR {sr:.2f}\n"
                                              for i, sr in enumerate(srs)))
    write_status(fixed, status, pid=None, started="2026-01-01T00:00:00+00:00", ended="2026-01-01T00:01:00+00:00",
                 exit_code=0 if status == "done" else 1, error=error)
    return fixed


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)  # the real worker: python -m engine
    monkeypatch.setenv("PLAYGROUND_FIGURES_DIR", str(tmp_path / "figures"))
    return tmp_path / "runs"


# --- the launch screen --------------------------------------------------------------------

@pilot_test
async def test_known_bad_value_shows_kb03_and_its_fix_removes_it(runs):
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        assert "KB03" not in finding_ids(screen)
        await type_into(pilot, screen, "target_kl", "0.1")
        await type_into(pilot, screen, "update_epochs", "20")
        await wait_for(pilot, lambda: "KB03" in finding_ids(screen) and screen.plan_is_current, what="KB03")
        await wait_for(pilot, lambda: "KB03" in shown_rules(screen), what="KB03 on screen")
        kb03 = next(f for f in screen.plan.findings if f.id == "KB03")
        assert kb03.severity == "error" and kb03.fix
        await pilot.press("ctrl+f")  # the first finding's fix
        await wait_for(pilot, lambda: screen.plan_is_current and "KB03" not in finding_ids(screen), what="KB03 gone")
        await wait_for(pilot, lambda: "KB03" not in shown_rules(screen), what="KB03 gone from the screen")
        for key, value in kb03.fix.items():
            assert screen.query_one(f"#field-{key}").value in (str(value), value)


@pilot_test
async def test_checkpoints_show_role_env_and_sr_from_metadata(runs, tmp_path, monkeypatch):
    import engine.checkpoints as ck
    from engine.nets import Actor

    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    env_id = "pickcube-lite"
    actor = Actor(21, 4)  # pickcube-lite's observation and action sizes
    path = ck.ladder_dir(env_id) / "start.pt"
    ck.save_checkpoint(path, env_id=env_id, role="start", iteration=7, actor=actor, det_sr=0.42, stoch_sr=0.31)
    ck.write_index(env_id, {"env_id": env_id, "roles": {"start": {"file": "start.pt"}}, "iterations": []})
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo-gamma99")
        info = str(screen.query_one("#info-checkpoint", Static).render())
        assert "start" in info and env_id in info and "42.0%" in info and "31.0%" in info


@pilot_test
async def test_a_validation_that_ends_after_quitting_touches_nothing(runs):
    """A validation runs in a thread; one that finishes once the user has quit (the app shutting
    down, its widgets being removed) must not reach for them: found as a NoMatches('#findings')
    crash on a loaded machine. Here the real validation thread ends after the app has closed."""
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        shown = screen.plan
    with app._context():  # as in the app's worker threads, which carry the app's context
        await asyncio.to_thread(screen._plan_thread, screen._gen, "gae-ppo", {"seed": "3"})
    assert screen.plan is shown  # the late result was dropped, without an error


@pilot_test
async def test_typing_in_a_field_never_switches_screens_and_f_keys_do(runs):
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        await type_into(pilot, screen, "exp_name", "my?run")
        assert isinstance(app.screen, LaunchScreen) and screen.query_one("#field-exp_name", Input).value == "my?run"
        await pilot.press("f3")
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f2")
        assert app.screen is screen
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is screen


@pilot_test
async def test_unusable_input_is_a_message_not_a_traceback(runs):
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        await type_into(pilot, screen, "gamma", "1.5")
        await wait_for(pilot, lambda: screen.plan_is_current and screen.plan.problems, what="a problem")
        assert "gamma" in screen.plan.problems[0]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("cannot launch" in n.message for n in app._notifications),
                       what="a message on screen")
        assert isinstance(app.screen, LaunchScreen) and not (runs.exists() and any(runs.iterdir()))


@pilot_test
async def test_error_findings_need_confirmation_to_launch(runs, monkeypatch, tmp_path):
    fake = tmp_path / "worker.py"
    fake.write_text("import sys\nsys.exit(0)\n")
    monkeypatch.setenv("PLAYGROUND_WORKER", f"{sys.executable} {fake}")
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo-gamma99")
        await type_into(pilot, screen, "checkpoint", "none")
        await type_into(pilot, screen, "target_kl", "0.1")
        await type_into(pilot, screen, "update_epochs", "20")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("n")
        assert app.screen is screen and not (runs.exists() and any(runs.iterdir()))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor")
        (run_dir,) = list(runs.iterdir())
        recorded = json.loads((run_dir / "findings.json").read_text())
        assert "KB03" in [f["id"] for f in recorded]


# --- a real run, followed and stopped -----------------------------------------------------

@pilot_test
async def test_launch_a_real_tiny_run_follow_its_sr_and_stop_it(runs):
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        for key, value in TINY.items():
            await type_into(pilot, screen, key, value)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor")
        mon = app.screen
        (run_id,) = list(app.runs)
        view = app.runs[run_id]
        await wait_for(pilot, lambda: view.state == "running" and len(view.series()[0]) >= 3, timeout=120,
                       what="three SR points of the running run")
        await pilot.pause(1.2)  # one redraw
        table, plot = mon.table, mon.query_one(SRPlot)
        shown_sr = table._shown[run_id]["sr"]
        assert shown_sr.endswith("%") and shown_sr in str(table.get_option(run_id).prompt)
        xs, ys = view.series()
        assert len(plot._datasets) == 1 and len(plot._datasets[0].x) >= 3
        n_before = len(plot._datasets[0].x)
        await wait_for(pilot, lambda: len(plot._datasets[0].x) > n_before, timeout=60, what="the curve to grow")
        assert plot._datasets[0].y[-1] == pytest.approx(100 * view.series()[1][len(plot._datasets[0].x) - 1])
        assert pct(view.sr_now).endswith("%")
        await pilot.press("s")
        await wait_for(pilot, lambda: view.state == "stopped", timeout=60, what="status stopped")
        await wait_for(pilot, lambda: " stopped " in str(table.get_option(run_id).prompt), timeout=5,
                       what="the table to show stopped")
        assert read_status(runs / run_id)["status"] == "stopped"


# --- runs outlive the window ---------------------------------------------------------------

@pilot_test
async def test_restart_shows_every_run_and_a_dead_worker_as_failed(runs):
    make_run(runs, "cli-done", [0.0, 0.4, 0.7])
    d = make_run(runs, "dead", [0.0, 0.1], status="running")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a worker that died without writing its final status
    write_status(d, "running", pid=gone.pid, started=now_iso())
    app = PlaygroundApp(runs, poll_s=0.2, scan_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: len(app.runs) == 2 and app.runs[d.name].state == "failed", timeout=20,
                       what="the dead worker reconciled")
        await pilot.pause(1.2)
        assert app.runs["20260101-000000-cli-done"].peak_sr == pytest.approx(0.7)
        assert "gone without a final status" in app.runs[d.name].status["error"]
        mon = app.screen
        mon.table.select(d.name)
        await pilot.pause(1.2)
        assert "failed:" in str(mon.query_one("#run-detail", Static).render())


@pilot_test
async def test_quit_with_live_runs_asks_and_leave_keeps_them_running(runs, request):
    from engine.runlock import release, try_lock

    d = make_run(runs, "live", [0.0], status="running")
    write_status(d, "running", pid=os.getpid(), started=now_iso())
    lock = try_lock(d)  # held as a live worker holds it
    request.addfinalizer(lambda: release(lock))
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: d.name in app.runs and app.runs[d.name].live, what="the live run")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the quit question")
        await pilot.press("escape")
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the quit question")
        await pilot.press("l")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert read_status(d)["status"] == "running"


@pilot_test
async def test_palette_has_launch_stop_compare_and_export_entries(runs):
    make_run(runs, "a", [0.0, 0.5])
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        from tui.commands import PlaygroundCommands

        await wait_for(pilot, lambda: app.runs, what="the run")
        names = [n for n, _, _ in PlaygroundCommands(app.screen)._commands()]
        assert "Open preset gae-ppo" in names and "Launch the form" in names and "Compare marked runs" in names
        assert "Export figure (PNG)" in names and "Export figure (SVG)" in names


@pilot_test
async def test_mark_summary_and_compare(runs):
    make_run(runs, "a", [0.0, 0.5, 0.6])
    make_run(runs, "b", [0.0, 0.2], status="failed", error="worker ended (exit code 1)")
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: len(app.runs) == 2, what="both runs")
        await pilot.pause(1.2)
        mon = app.screen
        await pilot.press("c")  # nothing marked: a message
        assert any("mark runs" in n.message for n in app._notifications)
        await pilot.press("m", "up", "m")
        assert all(v.marked for v in app.runs.values())
        await pilot.pause(1.2)
        assert len(mon.query_one(SRPlot)._datasets) == 2  # the selected run and the other marked one
        await pilot.press("o")
        from tui.screens.dialogs import CompareScreen, SummaryScreen

        assert isinstance(app.screen, SummaryScreen)
        await pilot.press("escape")
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        assert len(app.screen.query_one(SRPlot)._datasets) == 2


@pilot_test
async def test_a_missing_ladder_role_is_pretrained_as_a_followed_job(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    fake = Path(__file__).with_name("fake_pretrain.py")
    monkeypatch.setenv("PLAYGROUND_PRETRAIN_WORKER", f"{sys.executable} {fake}")
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo-gamma99")
        assert screen.plan.missing == [("checkpoint", "start")]
        assert "no start" in str(screen.query_one("#missing", Static).render())
        await pilot.press("ctrl+r")  # refused: the role is missing
        await wait_for(pilot, lambda: any("ctrl+t" in n.message for n in app._notifications), what="the refusal")
        assert not (runs.exists() and any(runs.iterdir()))
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor")
        (job_id,) = list(app.runs)
        await wait_for(pilot, lambda: app.runs[job_id].state == "done", timeout=90, what="the job to finish")
        await wait_for(pilot, lambda: screen.plan_is_current and not screen.plan.missing, what="the re-plan")
        assert "45.0%" in str(screen.query_one("#info-checkpoint", Static).render())


@pilot_test
async def test_export_the_overlay_as_png_and_svg(runs, tmp_path):
    make_run(runs, "a", [0.0, 0.5, 0.6])
    make_run(runs, "b", [0.0, 0.2, 0.4])
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: len(app.runs) == 2, what="both runs")
        await pilot.pause(1.2)
        await pilot.press("m", "up", "m", "e", "v")
        figures = tmp_path / "figures"
        await wait_for(pilot, lambda: len(list(figures.glob("*.png"))) == 1 and len(list(figures.glob("*.svg"))) == 1,
                       what="the PNG and the SVG")
        (png,) = figures.glob("*.png")
        (svg,) = figures.glob("*.svg")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert "<svg" in svg.read_text()[:500]
        await wait_for(pilot, lambda: sum("figure written" in n.message for n in app._notifications) == 2,
                       what="where the figures went")


def fake_worker(tmp_path: Path, monkeypatch, **opts) -> None:
    """The launcher tests' fake worker in place of `python -m engine` (cheap, obeys SIGTERM)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_launcher_tests", Path(__file__).with_name("test_launcher.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(mod.write_fake_worker(tmp_path)))
    monkeypatch.setenv("FAKE_WORKER_OPTS", json.dumps(opts))


@pilot_test
async def test_quit_with_live_runs_can_stop_them(runs, tmp_path, monkeypatch):
    fake_worker(tmp_path, monkeypatch, iters=100000, sleep=0.2)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo-gamma99")
        await type_into(pilot, screen, "checkpoint", "none")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.runs and all(v.state == "running" for v in app.runs.values()),
                       what="the run running")
        (run_id,) = list(app.runs)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the quit question")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit after stopping")
    status = read_status(runs / run_id)
    assert status["status"] == "stopped"


@pilot_test
async def test_the_curve_is_redrawn_when_the_terminal_is_resized(runs):
    from textual_hires_canvas import Canvas

    make_run(runs, "a", [0.0, 0.5, 0.6])
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.runs and app.monitor and app.monitor.selected, what="the run")
        canvas = app.monitor.query_one(SRPlot).query_one("#plot", Canvas)
        await wait_for(pilot, lambda: canvas._canvas_size is not None, what="the first drawing")
        small = canvas._canvas_size
        await pilot.resize_terminal(160, 50)
        await wait_for(pilot, lambda: canvas._canvas_size is not None and canvas._canvas_size.width > small.width
                       and canvas._canvas_size.height > small.height, what="the canvas to follow the resize")


@pilot_test
async def test_palette_opens_a_preset_in_the_form_and_launches_only_what_the_form_shows(runs, tmp_path, monkeypatch):
    fake_worker(tmp_path, monkeypatch, iters=3, sleep=0.05)
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "tiny.toml").write_text('regime = "online"\nestimator = "gae"\nupdate = "ppo"\ncheckpoint = "none"\n'
                                       'gamma = 0.99\nnum_minibatches = 25\n')
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(presets))
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        from tui.commands import PlaygroundCommands

        (open_,) = [cb for name, _, cb in PlaygroundCommands(app.screen)._commands() if name == "Open preset tiny"]
        open_()
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.preset == "tiny",
                       what="the preset in the form")
        await pilot.pause(0.5)
        assert not app.runs and not runs.exists()  # opening a preset starts nothing
        (launch,) = [cb for name, _, cb in PlaygroundCommands(app.screen)._commands() if name == "Launch the form"]
        launch()
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.runs, what="the launch")
        (view,) = app.runs.values()
        await wait_for(pilot, lambda: view.state == "done", what="the fake run to finish")
        assert view.peak_sr == pytest.approx(0.7)


def test_runs_table_keeps_run_id_order_whatever_order_runs_are_found(tmp_path):
    """Runs found in another order (the listing loads them in batches) still show oldest first,
    and the highlighted run stays highlighted when a row is inserted above it."""
    from textual.app import App

    from tui.model import RunView
    from tui.widgets.runs_table import RunsTable

    class One(App):
        def compose(self):
            yield RunsTable()

    async def go():
        app = One()
        async with app.run_test() as pilot:
            t = app.query_one(RunsTable)
            views = {n: RunView(f"20260101-00000{i}-{n}", tmp_path / n) for i, n in enumerate(["alpha", "beta", "gamma"])}
            t.upsert(views["gamma"])
            t.select_last()
            t.upsert(views["alpha"])
            t.upsert(views["beta"])
            await pilot.pause()
            order = [t.get_option_at_index(i).id for i in range(t.row_count)]
            assert order == [views[n].run_id for n in ("alpha", "beta", "gamma")]
            assert t.selected_id == views["gamma"].run_id
            t.upsert(views["beta"])            # an unchanged run: nothing moves
            assert t.row_count == 3 and t.selected_id == views["gamma"].run_id

    asyncio.run(go())


@pilot_test
async def test_a_run_that_ends_is_notified_with_the_doctors_count_and_badge(runs, request):
    from engine.runlock import release, try_lock

    d = make_run(runs, "throttled", [0.4], status="running", update="ppo", estimator="gae", update_epochs=20,
                 target_kl=0.01)
    write_status(d, "running", pid=os.getpid(), started=now_iso())
    lock = try_lock(d)  # held as a live worker holds it
    request.addfinalizer(lambda: release(lock))
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: d.name in app.runs and app.runs[d.name].live, what="the live run")
        with open(d / "metrics.jsonl", "a") as f:  # three updates the KL stop ended after 1 of 20 epochs
            for i in (1, 2, 3):
                f.write(json.dumps({"iteration": i, "env_steps": 1000 * i, "wall_s": 2.0 * i, "sr": 0.4,
                                    "sr_at_end": 0.4, "epochs_run": 1, "stopped_early": True,
                                    "approx_kl": 0.02}) + "\n")
        write_status(d, "done", exit_code=0)
        await wait_for(pilot, lambda: any("throttled done" in n.message and "1 finding" in n.message
                                          for n in app._notifications), what="the notification")
        assert [x.id for x in app.runs[d.name].diagnoses()] == ["DOC04"]
        await pilot.pause(1.2)
        assert "DOC04" in str(app.screen.query_one("#run-detail", Static).render())
