"""Snapshots (pytest-textual-snapshot) of the launcher's two screens at 80x24 and at a large
size, drawn from deterministic inputs: a preset the test writes, an empty checkpoint ladder,
and run records this test writes with fixed ids and metrics. Update them with
`pytest tests/test_tui_snapshots.py --snapshot-update` after an intended change of the layout."""
from __future__ import annotations

import pytest

from test_tui import make_run, type_into, wait_for
from tui.app import PlaygroundApp
from tui.widgets.sr_plot import SRPlot


# the launch screen's preset, written by the test so that edits to presets/ do not move the snapshot
PRESET = """\
description = "GAE PPO with the pretrained V^pi_expert critic, gamma 0.8, KL stop off"
expected_sr = 0.932
regime = "online"
estimator = "gae"
update = "ppo"
checkpoint = "start"
critic_checkpoint = "critic-expert"
gamma = 0.8
num_envs = 100
num_steps = 50
update_epochs = 100
target_kl = 100.0
total_timesteps = 50000
num_minibatches = 25
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in tmp_path so that the runs directory is shown as the same relative `runs`; one
    preset (`gae-ppo`) in a presets directory of the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "ck"))
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "gae-ppo.toml").write_text(PRESET)
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path / "presets"))
    return tmp_path


def launch_with_kb03() -> tuple[PlaygroundApp, object]:
    app = PlaygroundApp("runs", poll_s=0.2)

    async def run_before(pilot) -> None:
        screen = app.screen
        screen.select_preset("gae-ppo")
        await wait_for(pilot, lambda: screen.plan is not None and screen.plan_is_current, what="the preset")
        await type_into(pilot, screen, "target_kl", "0.1")
        await type_into(pilot, screen, "update_epochs", "20")
        await wait_for(pilot, lambda: screen.plan_is_current and any(f.id == "KB03" for f in screen.plan.findings),
                       what="KB03")
        await pilot.pause(0.3)
        screen.query_one("#preset").focus()
        await pilot.pause(0.3)

    return app, run_before


def monitor_with_runs(tmp_path) -> tuple[PlaygroundApp, object]:
    runs = tmp_path / "runs"
    make_run(runs, "alpha", [0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.8, 0.82])
    make_run(runs, "beta", [0.0, 0.05, 0.2, 0.25], status="failed",
             error="worker (pid 4242) ended without a final status (killed by SIGKILL)")
    make_run(runs, "gamma", [0.0, 0.2, 0.6, 0.55, 0.7], status="stopped")
    app = PlaygroundApp("runs", poll_s=0.2)

    async def run_before(pilot) -> None:
        await pilot.press("f3")
        await wait_for(pilot, lambda: len(app.runs) == 3 and app.monitor is not None
                       and app.monitor.table.row_count == 3, what="three runs")
        await pilot.press("up", "up", "m", "down", "down")  # mark alpha, select gamma
        mon = app.monitor
        await wait_for(pilot, lambda: len(mon.query_one(SRPlot)._datasets) == 2, what="the overlay")
        await wait_for(pilot, lambda: len(mon.query_one("#log").lines) == 5, what="gamma's engine.log")
        await pilot.pause(1.2)

    return app, run_before


def test_launch_screen_80x24(snap_compare, in_tmp):
    app, before = launch_with_kb03()
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_launch_screen_large(snap_compare, in_tmp):
    app, before = launch_with_kb03()
    assert snap_compare(app, terminal_size=(160, 50), run_before=before)


def test_monitor_screen_80x24(snap_compare, in_tmp):
    app, before = monitor_with_runs(in_tmp)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_monitor_screen_large(snap_compare, in_tmp):
    app, before = monitor_with_runs(in_tmp)
    assert snap_compare(app, terminal_size=(160, 50), run_before=before)
