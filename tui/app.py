"""`PlaygroundApp`, the Textual launcher, and `run(runs_dir) -> int`, which `playground` and
`playground tui` call.

The app owns the run views (`tui.model.RunView`, one per run directory) and the follower
thread (`tui.follower.RunsFollower`) that fills them through `tui.messages`. Two screens, as
modes: `launch` (F2, the first) and `monitor` (F3); F1 / `?` help, ctrl+p palette, ctrl+q
quits (asking whether live runs should be stopped or left running). Runs belong to the runs
directory, not to the window: a restart shows and follows every run again.
"""
from __future__ import annotations

import time
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from engine.launcher import runs_dir as default_runs_dir
from engine.launcher import setting

from . import core
from .commands import PlaygroundCommands
from .follower import RunsFollower
from .messages import LogLines, MetricsRows, RunFound, RunRemoved, StatusChanged
from .model import RunView, pct
from .screens.dialogs import CompareScreen, HelpScreen, QuitScreen
from .screens.launch import LaunchScreen
from .screens.monitor import MonitorScreen
from .styles import FOCUS_CSS


class PlaygroundApp(App):
    TITLE = "Offline RL Playground"
    # Not DEFAULT_MODE = "launch": on Python 3.12+ `App.run` runs asyncio tasks eagerly
    # (asyncio.eager_task_factory), so the first mode's screen mounts its Inputs before Textual
    # puts it on its (then empty) stack, and their watchers fail with ScreenStackError ("No
    # screens on stack"); the app stops taking keys. Switching from the default mode in
    # on_mount mounts it while another screen is current (tests/test_tui_snapshots.py).
    MODES = {"launch": LaunchScreen, "monitor": MonitorScreen}
    CSS = FOCUS_CSS  # the focus ring on every focusable widget (tui/styles.py)
    COMMANDS = App.COMMANDS | {PlaygroundCommands}
    BINDINGS = [
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "show_launch", "New run", priority=True),   # the launch screen (short: the footer fits 80 columns)
        Binding("f3", "show_monitor", "Monitor", priority=True),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, *, poll_s: float = 0.5, scan_s: float = 2.0):
        super().__init__()
        self.runs_dir = default_runs_dir(runs_dir)
        self.sub_title = str(self.runs_dir)
        self.runs: dict[str, RunView] = {}
        self.dirty: set[str] = set()
        self.follower = RunsFollower(self.runs_dir, self.post_message, poll_s=poll_s, scan_s=scan_s)
        self._thread = None
        self.monitor_screen: MonitorScreen | None = None
        self.launch_screen: LaunchScreen | None = None

    # --- life cycle ----------------------------------------------------------------------
    async def on_mount(self) -> None:
        import threading

        await self.switch_mode("launch")
        self._thread = threading.Thread(target=self.follower.loop, name="runs-follower", daemon=True)
        self._thread.start()

    def on_unmount(self) -> None:
        self.follower.stop()

    @property
    def monitor(self) -> MonitorScreen | None:
        """The monitor screen once it has been shown (it registers itself when mounted)."""
        return self.monitor_screen

    # --- messages from the follower ------------------------------------------------------
    def on_run_found(self, m: RunFound) -> None:
        if m.run_id not in self.runs:
            self.runs[m.run_id] = RunView(m.run_id, Path(m.path), m.config)
        self.dirty.add(m.run_id)

    def on_metrics_rows(self, m: MetricsRows) -> None:
        v = self.runs.get(m.run_id)
        if v is not None:
            v.add_rows(m.rows)
            self.dirty.add(m.run_id)

    def on_status_changed(self, m: StatusChanged) -> None:
        v = self.runs.get(m.run_id)
        if v is not None:
            old = v.state
            v.set_status(m.status)
            self.dirty.add(m.run_id)
            if v.state == "done" and old not in ("done", "starting") and core.is_pretrain_job(v.config):
                self.notify(f"pretraining of {v.config.get('env')} is done: its checkpoints are ready")
                if self.launch_screen is not None:
                    self.launch_screen.schedule_plan(0.0)  # the missing roles exist now
            if v.state == "stalled" and old != "stalled":
                self.notify(f"{m.run_id}: {v.status.get('stall')}", severity="warning", timeout=8)
            if v.state == "done" and old in ("queued", "running") and not core.is_pretrain_job(v.config):
                found = v.diagnoses()
                self.notify(f"{m.run_id} done: peak SR {pct(v.peak_sr)}" + (
                    f"; the run doctor has {len(found)} finding{'s' if len(found) != 1 else ''} (d in the monitor)"
                    if found else ""), severity="warning" if found else "information", timeout=8)
            if v.state == "failed" and old not in ("failed", "starting"):
                first = str(v.status.get("error") or "").splitlines()[:1]
                tb = list(m.status.get("worker_out") or [])
                self.notify(f"{m.run_id} failed" + (f": {first[0]}" if first else "")
                            + (f"\nworker.out: {tb[-1]}" if tb else ""), severity="error", timeout=8)
                mon = self.monitor
                if tb and mon is not None and mon.selected == m.run_id:
                    mon.on_log_lines(["--- last lines of worker.out ---", *tb], False)

    def on_run_removed(self, m: RunRemoved) -> None:
        """A followed run's folder was deleted or moved: drop it from the lists and say so."""
        if self.runs.pop(m.run_id, None) is not None:
            self.dirty.add(m.run_id)
            self.notify(f"{m.run_id} is gone: {m.reason or 'its run directory was deleted or moved'}",
                        severity="warning", timeout=8)

    def on_log_lines(self, m: LogLines) -> None:
        mon = self.monitor
        if mon is not None and mon.selected == m.run_id:
            mon.on_log_lines(m.lines, m.reset)

    # --- actions -------------------------------------------------------------------------
    def action_show_launch(self) -> None:
        self._close_modals()
        self.switch_mode("launch")

    def action_show_monitor(self) -> None:
        self._close_modals()
        self.switch_mode("monitor")

    def _close_modals(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def follow_launched(self, run_dir: Path, proc) -> None:
        """A run (or pretraining job) this app just started: follow it and show it."""
        run_dir = Path(run_dir)
        self.runs.setdefault(run_dir.name, RunView(run_dir.name, run_dir, core.read_config(run_dir),
                                                   {"status": "queued"}))
        self.dirty.add(run_dir.name)
        self.follower.add(run_dir, proc)
        self.switch_mode("monitor")
        mon = self.monitor
        if mon is not None:
            mon.redraw()
            mon.table.select(run_dir.name)
        self.notify(f"launched {run_dir.name}")

    def open_preset(self, name: str) -> None:
        """Palette: show this preset in the launch form; nothing starts (the form's edits give
        way to the preset the user asked for; launching stays a separate step)."""
        self.switch_mode("launch")
        screen = self.screen
        if isinstance(screen, LaunchScreen):
            screen.select_preset(name)
            self.notify(f"preset {name} is in the launch form: edit it, then launch with ctrl+r")

    def launch_form(self) -> None:
        """Palette: launch what the launch form shows, exactly as its Launch key does."""
        self.switch_mode("launch")
        screen = self.screen
        if isinstance(screen, LaunchScreen):
            screen.action_launch()

    def stop_runs(self, run_ids: list[str], then_exit: bool = False) -> None:
        """Stop these runs in a thread (each gets its grace period), then say how they ended."""
        views = [self.runs[r] for r in run_ids if r in self.runs]
        live = [v for v in views if v.live]
        if not live and not then_exit:
            for v in views:
                self.notify(f"{v.run_id} is {v.state}: nothing to stop", severity="warning")
            return
        self.notify(f"stopping {', '.join(v.run_id for v in live)} (each saves first) ...")

        def work() -> None:
            results = []
            for v in live:
                try:
                    st = core.stop(v.path)
                    results.append(f"{v.run_id}: {st.get('status')}")
                except core.USER_ERRORS as e:
                    results.append(f"{v.run_id}: {'; '.join(core.problem_lines(e))}")
            self.call_from_thread(self._stopped, results, then_exit)

        self.run_worker(work, thread=True, group="stop")

    def _stopped(self, results: list[str], then_exit: bool) -> None:
        self.follower._wake.set()
        if then_exit:
            self.exit(0)
            return
        for r in results:
            self.notify(r)

    def action_compare(self) -> None:
        marked = [v for v in self.runs.values() if v.marked]
        if not marked:
            self.notify("mark runs with m on the monitor (F3) first, then compare them", severity="warning")
            return
        self.push_screen(CompareScreen(marked))

    def export_figure(self, views: list[RunView] | None, fmt: str) -> None:
        """Write the SR overlay of these runs (default: the marked ones) as PNG or SVG."""
        if views is None:
            views = [v for v in self.runs.values() if v.marked]
        views = [v for v in views if v.rows]
        if not views:
            self.notify("nothing to export: mark runs that have SR values (m on the monitor)", severity="warning")
            return
        out = Path(setting("PLAYGROUND_FIGURES_DIR")) / f"sr-overlay-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"

        def work() -> None:
            try:
                path = core.export_figure([v.path for v in views], out)
                self.call_from_thread(self.notify, f"figure written: {path}")
            except (*core.USER_ERRORS, OSError, ValueError) as e:
                self.call_from_thread(self.notify, "cannot export: " + "; ".join(core.problem_lines(e)),
                                      severity="error", timeout=8)

        self.run_worker(work, thread=True, group="export")

    async def action_quit(self) -> None:
        live = [v.run_id for v in self.runs.values() if v.live]
        if not live:
            self.exit(0)
            return

        def answered(answer: str | None) -> None:
            if answer == "stop":
                self.stop_runs(live, then_exit=True)
            elif answer == "leave":
                self.exit(0)

        self.push_screen(QuitScreen(live), answered)


def run(runs_dir: str | Path | None = None) -> int:
    """Open the launcher on `runs_dir` (default: $PLAYGROUND_RUNS_DIR or ./runs); its exit code."""
    app = PlaygroundApp(runs_dir)
    app.run()
    return app.return_code or 0
