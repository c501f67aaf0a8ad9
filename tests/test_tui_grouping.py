"""The monitor's overlay grouped by configuration (key `g`): runs that differ only in the seed
become one curve (the IQM over seeds, its 95% CI band's edges dotted), a single run stays a line;
`g` again goes back to one line per run."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from tui.app import PlaygroundApp
from tui.widgets.sr_plot import SRPlot


def _tui_tests():
    spec = importlib.util.spec_from_file_location("_tui_tests", Path(__file__).with_name("test_tui.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = _tui_tests()


@T.pilot_test
async def test_g_groups_the_overlay_by_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYGROUND_WORKER", raising=False)
    runs = tmp_path / "runs"
    T.make_run(runs, "a0", [0.1, 0.5, 0.7], seed=0, gamma=0.95)
    T.make_run(runs, "a1", [0.1, 0.4, 0.9], seed=1, gamma=0.95)
    T.make_run(runs, "b", [0.1, 0.2, 0.3], seed=0, gamma=0.99)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        await T.wait_for(pilot, lambda: len(app.runs) == 3, what="three runs")
        await pilot.pause(1.2)
        mon = app.screen
        await pilot.press("m", "up", "m", "up", "m")
        assert all(v.marked for v in app.runs.values())
        await pilot.pause(1.2)
        plot = mon.query_one(SRPlot)
        assert len(plot._datasets) == 3  # one line per run
        await pilot.press("g")
        await pilot.pause(0.5)
        labels = [k[0] for k in plot._shown]
        assert sorted(labels) == ["gae-ppo gamma=0.95 (IQM, n=2)", "gae-ppo gamma=0.99 (1 run)"]
        assert len(plot._datasets) == 4  # the group's line and its two band edges, and the single run
        assert "by configuration" in mon.query_one("#plot-box").border_title
        await pilot.press("g")
        await pilot.pause(0.5)
        assert len(plot._datasets) == 3 and "by configuration" not in mon.query_one("#plot-box").border_title
