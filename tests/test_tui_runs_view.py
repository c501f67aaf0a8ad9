"""The monitor's runs table filtered and sorted (typed filter after `/`, sort cycled with `t`),
more runs than fit on screen reachable by scrolling, a run's config view (`i`) and the diff of two
runs (`x`, and `playground diff` / `show --config` on the CLI), the launch screen's ladder pick
lists with det / stoch SR (free text still accepted), and the focus ring on every focusable
widget of the launch screen, the monitor and a dialog (Textual's pilot, `App.run_test`)."""
from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, Select, Static
from typer.testing import CliRunner

from engine.checkpoints import shipped_ladder_dir
from engine.cli.app import app as cli_app
from test_tui import choose_preset, make_run, pilot_test, runs, type_into, wait_for  # noqa: F401 (fixture)
from tui.app import PlaygroundApp
from tui.screens.config_view import ConfigScreen, DiffScreen
from tui.screens.dialogs import HelpScreen


def many_runs(runs_dir, n: int = 14) -> dict[str, str]:
    """n runs with seeds 0..n-1 (SR rising with the seed), every third failed, two presets."""
    ids = {}
    for i in range(n):
        status = "failed" if i % 3 == 2 else "done"
        preset = "online-mc16-awr" if i % 2 else "gae-ppo"
        d = make_run(runs_dir, f"r{i:02d}", [0.0, 0.05 * i], status=status, seed=i, preset=preset)
        ids[f"r{i:02d}"] = d.name
    return ids


async def open_monitor(pilot, app, n: int):
    await pilot.press("f3")
    await wait_for(pilot, lambda: app.monitor is not None and app.monitor.table.total == n, what=f"{n} runs")
    return app.monitor


# --- filter and sort ------------------------------------------------------------------------

@pilot_test
async def test_filter_typed_after_slash_and_sort_cycled_with_t(runs):
    ids = many_runs(runs)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        mon = await open_monitor(pilot, app, 14)
        table = mon.table
        assert table.order == sorted(ids.values())                 # start order by default
        await pilot.press("slash")
        assert app.focused is mon.query_one("#runs-filter", Input)
        await pilot.press(*"status:failed seed:0-8")
        await wait_for(pilot, lambda: table.row_count == 3, what="the filter")
        assert table.order == [ids["r02"], ids["r05"], ids["r08"]]
        assert "3 of 14" in str(mon.query_one("#runs-count", Static).render())
        await pilot.press("escape")                                # back to the table; the filter stays
        assert app.focused is table and table.row_count == 3
        mon.query_one("#runs-filter", Input).value = "preset:mc16 sr>=50% -r13"
        await wait_for(pilot, lambda: table.order == [ids["r11"]], what="preset, SR and a negated word")
        mon.query_one("#runs-filter", Input).value = "sr>lots"       # unreadable: said, and left out
        await wait_for(pilot, lambda: table.row_count == 14, what="the bad word left out")
        assert "sr>lots" in str(mon.query_one("#runs-count", Static).render())
        mon.query_one("#runs-filter", Input).value = ""
        table.focus()
        labels = []
        for _ in range(4):                                         # status, preset, seed, SR now
            await pilot.press("t")
            labels.append(table.sort.label)
        assert labels == ["status", "preset", "seed", "SR now"]
        assert table.order[0] == ids["r13"] and table.order[-1] == ids["r00"]   # best SR first
        assert "SR now ▼" in str(mon.query_one("#runs-count", Static).render())
        await pilot.press("T")                                     # reversed: worst first
        assert table.order[0] == ids["r00"]
        await pilot.press("t", "t")                                # peak SR, then back to the start order
        assert table.sort.key == "id" and table.order == sorted(ids.values())


@pilot_test
async def test_more_runs_than_fit_are_shown_and_reachable_by_scrolling(runs):
    ids = many_runs(runs, 30)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(160, 50)) as pilot:
        mon = await open_monitor(pilot, app, 30)
        table = mon.table
        await pilot.pause(0.5)
        assert table.size.height > 10                              # more than 10 rows on screen
        table.focus()
        await pilot.press("home")
        for _ in range(29):
            await pilot.press("down")
        await wait_for(pilot, lambda: mon.selected == ids["r29"], what="the last run selected")
        assert table.scroll_offset.y > 0                           # the list scrolled to it
    async with PlaygroundApp(runs, poll_s=0.2).run_test(size=(80, 24)) as pilot:   # a small terminal
        mon = await open_monitor(pilot, pilot.app, 30)
        await pilot.pause(0.5)
        assert mon.table.size.height < 10                          # the curve and log take the rest
        await pilot.press("z")                                     # the table alone
        await pilot.pause(0.5)
        assert mon.table.size.height > 15 and not mon.query_one("#monitor-lower").display
        await pilot.press("z")
        await pilot.pause(0.5)
        assert mon.table.size.height < 10


def test_filter_words_and_sorts_as_pure_functions(tmp_path):
    from tui.model import RunView
    from tui.runs_query import SORTS, RunFilter, arrange

    def view(name, seed, sr, state="done", **cfg):
        v = RunView(f"20260101-000000-{name}", tmp_path / name, {"seed": seed, "preset": "gae-ppo", **cfg},
                    {"status": state})
        if sr is not None:
            v.add_rows([{"iteration": 1, "env_steps": 10, "wall_s": 1.0, "sr": sr}])
        return v

    vs = [view("a", 0, 0.2, gamma=0.8, checkpoint="/x/ladders/expert.pt"), view("b", 1, None, "running", gamma=0.9),
          view("c", 2, 0.9, "failed", checkpoint="/x/ladders/start.pt")]
    kept = lambda text: [v.run_id[-1] for v in arrange(vs, RunFilter.parse(text), SORTS[0])]  # noqa: E731
    assert kept("") == ["a", "b", "c"]
    assert kept("status:live") == ["b"] and kept("-status:run") == ["a", "c"]
    assert kept("seed:1,2") == ["b", "c"] and kept("seed>=1 sr>0.5") == ["c"]
    assert kept("gamma:0.9") == ["b"] and kept("gamma<0.85") == ["a"]
    assert kept("checkpoint:expert") == ["a"] and kept("estimator:gae") == []
    f = RunFilter.parse("colour:red seed:x")
    assert len(f.problems) == 2 and not f.active and "no such key" in f.problems[0]
    by_sr = SORTS[[s.key for s in SORTS].index("sr")]
    assert [v.run_id[-1] for v in arrange(vs, RunFilter(), by_sr)] == ["c", "a", "b"]          # no SR last
    assert [v.run_id[-1] for v in arrange(vs, RunFilter(), by_sr, reverse=True)] == ["a", "c", "b"]


# --- config view and diff -------------------------------------------------------------------

@pilot_test
async def test_config_view_and_diff_of_two_runs(runs):
    a = make_run(runs, "alpha", [0.1, 0.5], seed=0, gamma=0.8)
    b = make_run(runs, "beta", [0.1, 0.6], seed=3, gamma=0.9)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        mon = await open_monitor(pilot, app, 2)
        mon.table.focus()
        mon.table.select(a.name)
        await wait_for(pilot, lambda: mon.selected == a.name, what="alpha selected")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="the config view")
        assert app.screen.text == (a / "config.toml").read_text()   # as the launcher wrote it
        await pilot.pause(0.3)
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "config.toml of " in shown and "fully resolved config" in shown and "exp_name" in shown
        await pilot.press("escape")
        await pilot.press("x")                                     # nothing marked: says how
        await wait_for(pilot, lambda: any("mark one run" in n.message for n in app._notifications), what="the hint")
        await pilot.press("m")                                     # mark alpha, select beta: diff them
        mon.table.select(b.name)
        await wait_for(pilot, lambda: mon.selected == b.name, what="beta selected")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="the diff")
        t = app.screen.query_one(DataTable)
        rows = {t.get_row_at(i)[0]: t.get_row_at(i)[1:] for i in range(t.row_count)}
        assert rows == {"seed": ["3", "0"], "exp_name": ["beta", "alpha"], "gamma": ["0.9", "0.8"]}
        assert [str(c.label) for c in t.columns.values()] == ["key", b.name, a.name]


def test_cli_diff_and_show_config(tmp_path):
    runs_dir = tmp_path / "runs"
    a = make_run(runs_dir, "alpha", [0.1], seed=0, gamma=0.8)
    make_run(runs_dir, "beta", [0.1], seed=3, gamma=0.9, update_epochs=100)
    cli = CliRunner()
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "diff", "alpha", "beta", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {d["key"]: (d["a"], d["b"]) for d in out["differ"]} == {
        "seed": (0, 3), "exp_name": ("alpha", "beta"), "gamma": (0.8, 0.9), "update_epochs": (4, 100)}
    assert out["same"] > 40 and out["a"] == a.name
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "diff", "alpha", "beta"])
    assert r.exit_code == 0 and "4 keys differ" in r.stdout and "update_epochs" in r.stdout
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "diff", "alpha", "alpha"])
    assert r.exit_code == 0 and "the same config" in r.stdout
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "show", "alpha", "--config"])
    assert r.exit_code == 0 and r.stdout == (a / "config.toml").read_text()
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "show", "beta", "--config", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["update_epochs"] == 100
    for args in (["diff", "alpha", "nosuch"], ["show", "nosuch", "--config"]):
        r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), *args])
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and "no run matches 'nosuch'" in lines[0], r.output
    (a / "config.toml").unlink()
    (a / "status.json").write_text('{"status": "done"}')
    r = cli.invoke(cli_app, ["--runs-dir", str(runs_dir), "diff", "alpha", "beta"])
    assert r.exit_code == 2 and "has no config.toml" in r.stderr and "Traceback" not in r.output


# --- the launch screen: ladder pick lists, the focus ring -----------------------------------

@pilot_test
async def test_checkpoints_picked_from_the_ladder_with_det_and_stoch_sr(runs, monkeypatch):
    monkeypatch.delenv("PLAYGROUND_SHIPPED_LADDERS", raising=False)  # the shipped pickcube-lite ladder
    index = json.loads((shipped_ladder_dir("pickcube-lite") / "index.json").read_text())["roles"]
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        pick = screen.query_one("#pick-checkpoint", Select)
        await wait_for(pilot, lambda: len(screen._pick_options.get("checkpoint", [])) == 4, what="the pick list")
        labels = dict((v, label) for label, v in screen._pick_options["checkpoint"])
        assert list(labels) == ["start", "expert", "optimal", "none"]
        for role in ("start", "expert", "optimal"):
            det, stoch = index[role]["det_sr"], index[role]["stoch_sr"]
            assert f"{100 * det:.0f}% / {100 * stoch:.0f}%" in labels[role]
        critics = [v for _, v in screen._pick_options["critic_checkpoint"]]
        assert critics == ["critic-expert", "critic-optimal", "none"]
        assert pick.value == "start"                               # the field's role is the chosen entry
        pick.value = "expert"                                      # picked: the field takes it, validated
        await wait_for(pilot, lambda: screen.query_one("#field-checkpoint", Input).value == "expert"
                       and screen.plan_is_current and screen.plan.checkpoints["checkpoint"].role == "expert",
                       what="expert in the field and the plan")
        await type_into(pilot, screen, "checkpoint", "ckpt_76_logstd-1.5")   # free text: a seed name
        await wait_for(pilot, lambda: screen.plan_is_current and screen.plan.overrides.get("checkpoint")
                       == "ckpt_76_logstd-1.5", what="the seed name validated")
        assert not screen.plan.problems and screen.plan.checkpoints["checkpoint"].role == "start"
        assert pick.is_blank()                                     # not one of the listed roles



@pilot_test
async def test_a_validation_landing_between_a_pick_and_its_handling_keeps_the_pick(runs, monkeypatch):
    """A validation still in flight when the user picks a role from the list may land before the
    pick's own event is handled (found on a loaded machine: the field went back to `start`). The
    pick list follows the field only when the field is edited or the list changes, so the
    late result does not undo the pick."""
    from tui import core

    monkeypatch.delenv("PLAYGROUND_SHIPPED_LADDERS", raising=False)
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        await wait_for(pilot, lambda: len(screen._pick_options.get("checkpoint", [])) == 4, what="the pick list")
        await pilot.pause(0.3)
        stale, ladder = screen.plan, core.ladder("pickcube-lite")
        screen.query_one("#pick-checkpoint", Select).value = "expert"       # the user's pick: its event is queued
        screen._show_plan(screen._gen, stale, ladder)                        # ... and a validation lands first
        await wait_for(pilot, lambda: screen.query_one("#field-checkpoint", Input).value == "expert"
                       and screen.plan_is_current and screen.plan.checkpoints["checkpoint"].role == "expert",
                       timeout=20, what="expert in the field and the plan")
        assert screen.query_one("#pick-checkpoint", Select).value == "expert"

def ring(w) -> tuple:
    """What shows a widget's focus: the outline and border edges of the widget, of its first child
    (a Select's current value) and of its parent (the curve's box)."""
    out = []
    for node in (w, *list(w.children)[:1], w.parent):
        st = node.styles
        out += [st.outline_left, st.outline_right, st.border_left, st.border_top]
    return tuple(out)


async def assert_focus_ring(pilot, app, screen) -> list[str]:
    """Every widget of the screen's focus chain looks different focused, in the accent colour."""
    accent = app.get_css_variables()["accent"]  # ($accent as the style sheet resolves it)
    checked = []
    for w in list(screen.focus_chain):
        screen.set_focus(None)
        await pilot.pause()
        blurred = ring(w)
        w.focus()
        await pilot.pause()
        focused = ring(w)
        assert focused != blurred, f"{w!r} shows no focus"
        colours = [edge[1].hex.upper() for edge in focused if isinstance(edge, tuple) and edge[0]]
        assert accent.upper() in colours, f"{w!r}: {focused}"
        checked.append(type(w).__name__)
    return checked


@pilot_test
async def test_every_focusable_widget_shows_a_focus_ring(runs):
    make_run(runs, "alpha", [0.1, 0.5])
    app = PlaygroundApp(runs, poll_s=0.2)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await choose_preset(pilot, app, "gae-ppo")
        await pilot.pause(0.5)
        kinds = await assert_focus_ring(pilot, app, screen)
        assert {"Input", "Select", "Button", "FindingsList", "VerticalScroll"} <= set(kinds)
        assert kinds.count("Select") >= 5 + 4                      # method selects and the ladder pick lists
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.monitor is not None and app.monitor.table.row_count == 1, what="the run")
        kinds = await assert_focus_ring(pilot, app, app.screen)
        assert {"Input", "RunsTable", "SRPlot"} <= set(kinds)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        assert {"Button", "VerticalScroll"} <= set(await assert_focus_ring(pilot, app, app.screen))


@pytest.mark.parametrize("width,shown", [(80, False), (120, True)])
def test_the_footer_shows_the_extra_monitor_keys_where_it_has_room(tmp_path, width, shown):
    """At 80 columns the footer keeps F1/F2/F3 and ctrl+q with / and t; o, k, i and x join it on a
    wide terminal; the keys work at either width."""
    import asyncio

    runs_dir = tmp_path / "runs"
    make_run(runs_dir, "alpha", [0.1, 0.5])

    async def go():
        app = PlaygroundApp(runs_dir, poll_s=0.2)
        async with app.run_test(size=(width, 30)) as pilot:
            mon = await open_monitor(pilot, app, 1)
            await pilot.pause(0.3)
            keys = {k for k, b in app.screen.active_bindings.items() if b.binding.show}
            assert {"f1", "f2", "f3", "ctrl+q", "slash", "t", "s", "m", "d"} <= keys
            assert ({"o", "k", "i", "x"} <= keys) == shown and (not {"o", "k", "i", "x"} & keys) == (not shown)
            mon.table.focus()
            await pilot.press("i")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="i at any width")

    asyncio.run(go())


def test_the_validator_says_checking_until_its_first_answer_never_a_green_no_findings():
    import asyncio

    from textual.app import App

    from tui.widgets.findings import FindingsList

    class One(App):
        def compose(self):
            yield FindingsList(id="findings")

    def body(fl) -> str:
        return " ".join(str(w.render()) for w in fl.query(Static))

    async def go():
        app = One()
        async with app.run_test() as pilot:
            fl = app.query_one(FindingsList)
            await pilot.pause()
            assert fl.border_title == "validator: checking ..." and "checking ..." in body(fl)
            fl.waiting("pick a preset to validate it")              # the launch screen before a preset
            await pilot.pause()
            assert fl.border_title == "validator: waiting" and "no findings" not in body(fl)
            fl.checking()                                           # a preset picked: planning
            await pilot.pause()
            assert "checking ..." in body(fl) and "no findings" not in body(fl)
            fl.show([], [])                                         # the answer: nothing found
            await pilot.pause()
            assert "no findings" in body(fl) and fl.border_title == "0 errors, 0 warnings"
            fl.checking()                                           # an edit: the last answer stays, titled
            await pilot.pause()
            assert "no findings" in body(fl) and fl.border_title == "validator: checking ..."

    asyncio.run(go())
