"""TUI reliability (issue 18, class 11), without a terminal: the follower says when a run's
folder is deleted or moved (also a finished run's), and carries a traceback that only reached
worker.out into the failure status and the log pane's lines."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tui.follower import RunsFollower
from tui.messages import LogLines, RunRemoved, StatusChanged

TRACEBACK = ("--- 2026-01-01T00:00:00+00:00 launcher pid 1: python -m engine --run-dir x\n"
             "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "ImportError: cannot import name 'thing' from 'somewhere'\n")


def finished_run(runs: Path, name: str, status: str = "done") -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text('preset = "test"\n')
    (d / "status.json").write_text(json.dumps({"status": status, "pid": None, "started": None, "ended": None,
                                               "exit_code": 0 if status == "done" else 1,
                                               "error": None if status == "done" else "worker ended (exit code 1)"}))
    (d / "metrics.jsonl").write_text('{"iteration": 0, "sr": 0.5}\n')
    return d


def follower(runs: Path) -> tuple[RunsFollower, list]:
    got: list = []
    return RunsFollower(runs, got.append, scan_s=0.0), got


def test_a_finished_runs_folder_deleted_or_moved_is_reported_gone(tmp_path: Path):
    runs = tmp_path / "runs"
    a = finished_run(runs, "20260101-000000-a")
    b = finished_run(runs, "20260101-000001-b")
    f, got = follower(runs)
    f.tick()
    assert not [m for m in got if isinstance(m, RunRemoved)]
    shutil.rmtree(a)
    b.rename(tmp_path / "moved-away")
    f.tick()
    gone = {m.run_id: m.reason for m in got if isinstance(m, RunRemoved)}
    assert set(gone) == {a.name, b.name} and all("deleted or moved" in r for r in gone.values())
    got.clear()
    f.tick()
    assert not [m for m in got if isinstance(m, RunRemoved)]  # said once


def test_a_traceback_only_in_worker_out_reaches_the_failure_status_and_the_log_pane(tmp_path: Path):
    runs = tmp_path / "runs"
    d = finished_run(runs, "20260101-000000-a", status="failed")
    (d / "worker.out").write_text(TRACEBACK)
    (d / "engine.log").write_text("2026-01-01 00:00:00,000 INFO config: {}\n")
    f, got = follower(runs)
    f.tick()
    [st] = [m.status for m in got if isinstance(m, StatusChanged)]
    assert st["status"] == "failed" and st["worker_out"][-1].startswith("ImportError: cannot import name")
    f.tail(d.name)
    f.tick()
    lines = [x for m in got if isinstance(m, LogLines) for x in m.lines]
    assert "--- last lines of worker.out ---" in lines and any(x.startswith("ImportError") for x in lines)


def test_a_clean_worker_out_adds_nothing(tmp_path: Path):
    runs = tmp_path / "runs"
    d = finished_run(runs, "20260101-000000-a", status="failed")
    (d / "worker.out").write_text("--- 2026-01-01T00:00:00+00:00 launcher pid 1: python -m engine\n")
    f, got = follower(runs)
    f.tick()
    [st] = [m.status for m in got if isinstance(m, StatusChanged)]
    assert st["worker_out"] == []
