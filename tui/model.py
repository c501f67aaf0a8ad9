"""What the app knows about each run it follows (`RunView`): its config, status and metrics
rows as the follower reported them, and the numbers the monitor shows (iteration, env steps,
SR now, peak SR, ETA). Pure data, no widgets: the screens read it."""
from __future__ import annotations

from pathlib import Path

from . import core


class RunView:
    """One run: its id, directory and config, the core's `RunProgress` fed with what the
    follower reported, and whether the user marked it for the overlay."""

    def __init__(self, run_id: str, path: Path, config: dict | None = None, status: dict | None = None):
        self.run_id = run_id
        self.path = Path(path)
        self.config = dict(config or {})
        self.progress = core.RunProgress(self.path, conf=self.config)
        self.marked = False
        if status:
            self.progress.set_status(status)

    def add_rows(self, rows: list[dict]) -> None:
        for r in rows:
            self.progress.add_row(r)

    def set_status(self, status: dict) -> None:
        self.progress.set_status(status)

    # --- what the screens show ------------------------------------------------------------
    @property
    def status(self) -> dict:
        return self.progress.status

    @property
    def rows(self) -> list[dict]:
        return self.progress.rows

    @property
    def state(self) -> str:
        """The run's state; `stalled` for a running run without progress (the launcher's
        watcher adds `stalled_since` to its status: engine.launcher.stall)."""
        st = self.progress.state
        return "stalled" if st == "running" and self.status.get("stalled_since") else st

    @property
    def live(self) -> bool:
        return not self.progress.finished

    @property
    def preset(self) -> str:
        return str(self.config.get("preset") or "")

    @property
    def planned(self) -> int | None:
        return self.progress.planned

    @property
    def iteration(self) -> int | None:
        return self.progress.iteration

    @property
    def env_steps(self) -> int | None:
        return self.progress.env_steps

    @property
    def sr_now(self) -> float | None:
        return self.progress.sr

    @property
    def peak_sr(self) -> float | None:
        return self.progress.peak_sr

    def eta_s(self) -> float | None:
        return self.progress.eta_s() if self.live else None

    def series(self) -> tuple[list[float], list[float]]:
        """(env steps, SR) for the curve."""
        return self.progress.series()


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def short_label(run_id: str, width: int = 28) -> str:
    """A run id without its date (`20261201-230721-gae-ppo` -> `230721-gae-ppo`), cut to `width`."""
    parts = run_id.split("-", 1)
    label = parts[1] if len(parts) == 2 and parts[0].isdigit() else run_id
    return label if len(label) <= width else label[:width - 1] + "…"
