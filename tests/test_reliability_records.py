"""Reliability round 2 (issue 18), records and settings: odd values read without a crash, every
environment variable validated in one place, names that cannot break records, resume reading its
own metrics defensively, the runs dir as a boundary, never overwriting evidence with less, a full
disk reported as `failed`, experiment-log entries on a new line.

The fake worker of tests/test_launcher.py stands in for `python -m engine`."""
from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path

import pytest

from engine import settings
from engine.cli.app import main
from engine.launcher import list_runs, prepare_run, reconcile, resolve_run, start_worker, stop_run
from engine.launcher.reconcile import write_worker_info
from engine.records import append_experiment_log, read_metrics, read_status, truncate_metrics, write_status
from tests.test_launcher import cfg, configure, fake_cmd, runs, wait_for, worker  # noqa: F401 (fixtures)


def made_run(runs: Path, name: str = "20260101-000000-x", rows: str = "", status: dict | None = None) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text('preset = "test"\nregime = "offline"\nnum_iterations = 2\n')
    if status is not None:
        (d / "status.json").write_text(json.dumps(status))
    (d / "metrics.jsonl").write_text(rows)
    return d


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


DONE = {"status": "done", "pid": None, "started": None, "ended": None, "exit_code": 0, "error": None}


@pytest.fixture(autouse=True)
def _shipped_ladder(monkeypatch):
    """The package's shipped pickcube-lite ladder: no test here may start a pretraining job."""
    monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "1")


# --- class 1: odd values: one line or ignored, never a traceback ---------------------------

@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_non_finite_numbers_in_metrics_read_as_missing(tmp_path: Path, value: str):
    d = made_run(tmp_path, rows=f'{{"iteration": 0, "env_steps": {value}, "wall_s": {value}, "sr": {value}}}\n')
    [row] = read_metrics(d)
    assert row["iteration"] == 0 and row["wall_s"] is None and row["env_steps"] is None and row["sr"] is None


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-1e999"])
def test_show_and_runs_take_non_finite_metrics(tmp_path: Path, capsys, value: str):
    runs = tmp_path / "runs"
    made_run(runs, rows=f'{{"iteration": 0, "env_steps": 10, "wall_s": {value}, "sr": 0.5}}\n'
                        f'{{"iteration": 1, "env_steps": {value}, "wall_s": 2.0, "sr": {value}}}\n', status=DONE)
    for cmd in (["show", "20260101-000000-x"], ["runs"], ["runs", "--json"]):
        code, out, err = cli(capsys, "--runs-dir", str(runs), *cmd)
        assert code == 0, err
        assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("name,value,words", [
    ("PLAYGROUND_MEM_AVAILABLE_MIB", "inf", "finite"),
    ("PLAYGROUND_MEM_AVAILABLE_MIB", "-5", ">= 1"),
    ("PLAYGROUND_MEM_AVAILABLE_MIB", "nan", "finite"),
    ("PLAYGROUND_MANISKILL_PROCS", "0", ">= 1"),
    ("PLAYGROUND_MANISKILL_PROCS", "2.5", "whole number"),
    ("PLAYGROUND_THREADS", "-3", ">= 1"),
    ("PLAYGROUND_THREADS", "lots", "whole number"),
    ("PLAYGROUND_THREADS_MAX", "1e9999", "whole number"),
    ("PLAYGROUND_WORKER", "python 'unbalanced", "quote"),
    ("PLAYGROUND_PRETRAIN_WORKER", 'python "x', "quote"),
    ("PLAYGROUND_SHIPPED_LADDERS", "maybe", "yes/no"),
    ("PLAYGROUND_DEBUG", "verbose", "yes/no"),
    ("PLAYGROUND_RAY_SHIP_CODE", "2", "yes/no"),
])
def test_a_bad_environment_variable_is_one_line_naming_it(tmp_path: Path, capsys, monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "--runs-dir", str(runs), "run", "gae-ppo", "--checkpoint", "none", "--no-pretrain")
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error:") and name in lines[0] and words in lines[0]
    assert not runs.exists()  # refused before anything was written


def test_every_environment_variable_the_code_reads_is_declared():
    import re

    root = Path(__file__).resolve().parent.parent
    found = set()
    for p in list((root / "engine").rglob("*.py")) + list((root / "tui").rglob("*.py")):
        if "bench" in p.parts:
            continue
        found |= set(re.findall(r"\b(PLAYGROUND_[A-Z0-9_]+)", p.read_text()))
    found -= {"PLAYGROUND_TEST_LOG"}  # the test suite's own
    found = {n for n in found if not n.startswith("PLAYGROUND_MS_")}  # internal: the ManiSkill host's
    assert found <= set(settings.SETTINGS), sorted(found - set(settings.SETTINGS))
    doc = (root / "docs" / "architecture.md").read_text()
    assert all(f"`{n}`" in doc for n in settings.SETTINGS), [n for n in settings.SETTINGS if f"`{n}`" not in doc]


def test_a_bad_worker_command_leaves_no_run_queued_for_ever(runs: Path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_WORKER", "python 'oops")
    with pytest.raises(settings.SettingError, match="PLAYGROUND_WORKER"):
        prepare_run(cfg(), [], runs_dir=runs)
    assert not runs.exists() or not any(runs.iterdir())


def test_settings_defaults_and_values():
    assert settings.get("PLAYGROUND_THREADS", {}) == "auto"
    assert settings.get("PLAYGROUND_THREADS", {"PLAYGROUND_THREADS": " 3 "}) == 3
    assert settings.get("PLAYGROUND_MEM_AVAILABLE_MIB", {"PLAYGROUND_MEM_AVAILABLE_MIB": "512.5"}) == 512.5
    assert settings.get("PLAYGROUND_SHIPPED_LADDERS", {"PLAYGROUND_SHIPPED_LADDERS": "off"}) is False
    assert settings.get("PLAYGROUND_WORKER", {"PLAYGROUND_WORKER": "python -m x"}) == ["python", "-m", "x"]
    assert settings.get("PLAYGROUND_RUNS_DIR", {"PLAYGROUND_RUNS_DIR": ""}) == "runs"


# --- class 1 and 2: names that would break records are refused before anything is written ---

@pytest.mark.parametrize("name", ["a\x7fb", "tab\there", "new\nline", "nul\x00x", "c1\x85x", "esc\x1b[31m"])
def test_an_exp_name_with_a_control_character_is_refused_and_writes_nothing(tmp_path: Path, capsys, name: str):
    runs = tmp_path / "runs"
    for cmd in (["check"], ["run", "--no-pretrain"]):
        code, out, err = cli(capsys, "--runs-dir", str(runs), *cmd, "gae-ppo", "--checkpoint", "none",
                             "--exp_name", name)
        assert code == 2 and "exp_name" in err and "control character" in err, err
        assert len(err.strip().splitlines()) == 1
    assert not runs.exists()


def test_an_exp_name_that_is_not_utf8_is_refused_and_writes_nothing(tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    bad = os.fsdecode(b"caf\xe9-run")  # what Python makes of a Latin-1 byte on a UTF-8 command line
    code, out, err = cli(capsys, "--runs-dir", str(runs), "run", "gae-ppo", "--checkpoint", "none", "--no-pretrain", "--exp_name", bad)
    assert code == 2 and "exp_name" in err and "UTF-8" in err and "\\xe9" in err, err
    assert not runs.exists()


def test_config_toml_stays_valid_for_every_string_it_can_hold(runs: Path):
    from engine.config.tomlio import dumps_flat

    text = "".join(chr(c) for c in range(0x20, 0x250) if not 0x7F <= c <= 0x9F) + "\x7f\x85\t\n\"\\"
    assert tomllib.loads(dumps_flat({"exp_name": text}))["exp_name"] == text


def test_prepare_run_removes_the_folder_when_a_record_cannot_be_written(runs: Path):
    c = cfg()
    c.command = os.fsdecode(b"playground run \xff")  # cannot be encoded as UTF-8
    with pytest.raises(Exception, match="nothing was kept"):
        prepare_run(c, [], runs_dir=runs)
    assert not any(runs.iterdir())


# --- class 3: resume reads its own metrics defensively ---------------------------------------

@pytest.mark.parametrize("bad", ['{"env_steps": 5}', '{"iteration": "3"}', '{"iteration": null}',
                                 '{"iteration": true}', '{"iteration": 1.5}', '{"iteration": -1}',
                                 '{"iteration": Infinity}', '[1, 2]', '{"iteration": 1e999}'])
def test_truncate_metrics_skips_rows_without_a_usable_iteration(tmp_path: Path, bad: str):
    d = made_run(tmp_path, rows=f'{{"iteration": 0, "sr": 0.1}}\n{bad}\n{{"iteration": 1, "sr": 0.2}}\n'
                                f'{{"iteration": 2, "sr": 0.3}}\n')
    truncate_metrics(d, 1)
    assert [r["iteration"] for r in read_metrics(d)] == [0, 1]


# --- class 4: the runs dir is a boundary ------------------------------------------------------

def test_a_link_to_a_run_outside_the_runs_dir_is_not_resolved_listed_or_stopped(tmp_path: Path, capsys):
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    outside = made_run(elsewhere, "20260101-000000-outside",
                       status={**DONE, "status": "running", "pid": os.getpid()})
    before = (outside / "status.json").read_bytes()
    (runs / "20260101-000000-linked").symlink_to(outside)
    (runs / "linked-by-name").symlink_to(outside)
    for ref in ("20260101-000000-linked", "20260101", "linked", "linked-by-name", "outside",
                str(runs / "20260101-000000-linked"), str(runs / "linked-by-name")):
        with pytest.raises(Exception) as e:
            resolve_run(ref, runs)
        assert "run" in str(e.value)
    assert list_runs(runs) == []
    for cmd in (["stop", "20260101-000000-linked"], ["stop", "linked"], ["stop", str(runs / "linked-by-name")],
                ["show", "20260101"]):
        code, out, err = cli(capsys, "--runs-dir", str(runs), *cmd)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (outside / "status.json").read_bytes() == before


def test_a_link_inside_the_runs_dir_to_a_run_of_it_still_resolves(tmp_path: Path):
    runs = tmp_path / "runs"
    d = made_run(runs, status=DONE)
    assert resolve_run("20260101-000000-x", runs) == d
    assert resolve_run("x", runs) == d


# --- class 5: never overwrite evidence with less --------------------------------------------

FINISHED_LOG = ("2026-01-01 00:00:01,000 INFO config: {}\n"
                "2026-01-01 00:00:09,000 INFO run done at iteration 2\n")


@pytest.mark.parametrize("garbage", [b'{"status": "do', b"\xff\xfe", b"[1, 2]", b""])
def test_an_unreadable_status_of_a_finished_run_is_rebuilt_from_its_records(tmp_path: Path, garbage: bytes):
    d = made_run(tmp_path / "runs", rows='{"iteration": 0, "sr": 0.1}\n{"iteration": 1, "sr": 0.2}\n')
    (d / "status.json").write_bytes(garbage)
    (d / "engine.log").write_text(FINISHED_LOG)
    write_worker_info(d, {"pid": 2 ** 22 - 3, "spawned": "2026-01-01T00:00:00+00:00"})  # long gone
    assert list_runs(d.parent)[0].status == "done"          # listing: computed, nothing written
    assert (d / "status.json").read_bytes() == garbage
    st = reconcile(d)
    assert st["status"] == "done" and "rebuilt from engine.log" in st["rebuilt"]
    assert read_status(d)["status"] == "done"
    kept = list(d.glob("status.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage


def test_an_unreadable_status_without_evidence_is_left_alone_and_shown_unreadable(tmp_path: Path, capsys):
    d = made_run(tmp_path / "runs", rows='{"iteration": 0, "sr": 0.1}\n')
    (d / "status.json").write_text("{not json")
    write_worker_info(d, {"pid": 2 ** 22 - 3, "spawned": "2026-01-01T00:00:00+00:00"})
    st = reconcile(d)
    assert st["status"] == "unreadable"
    assert (d / "status.json").read_text() == "{not json"
    code, out, err = cli(capsys, "--runs-dir", str(d.parent), "runs")
    assert code == 0 and "unreadable" in out


def test_rebuilt_from_metrics_when_every_planned_iteration_is_there(tmp_path: Path):
    d = made_run(tmp_path / "runs", rows='{"iteration": 0, "sr": 0.1}\n{"iteration": 1, "sr": 0.2}\n')
    (d / "status.json").write_text("{")
    st = reconcile(d)
    assert st["status"] == "done" and "metrics.jsonl" in st["rebuilt"]


# --- class 6: a full disk is reported as failed with the OS's reason --------------------------

def test_run_json_on_a_full_disk_reports_failed_with_the_reason(tmp_path: Path, capsys, monkeypatch):
    import engine.records as records

    real = records.atomic_write
    monkeypatch.setenv("FAKE_WORKER_OPTS", json.dumps({"mode": "die"}))  # writes running, then dies
    from tests.test_launcher import write_fake_worker

    monkeypatch.setenv("PLAYGROUND_WORKER", " ".join(write_fake_worker(tmp_path)))

    def full_after_running(path, text):
        if Path(path).name == "status.json" and '"running"' not in text and '"queued"' not in text:
            raise OSError(28, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(records, "atomic_write", full_after_running)
    code, out, err = cli(capsys, "--runs-dir", str(tmp_path / "runs"), "run", "gae-ppo", "--checkpoint", "none", "--no-pretrain",
                         "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    assert doc["run"]["status"] == "failed" and "No space left on device" in doc["run"]["error"]


# --- class 7: an experiment-log entry always starts on a new line -----------------------------

def test_an_entry_after_a_fragment_starts_on_a_new_line(tmp_path: Path):
    log = tmp_path / "log.md"
    append_experiment_log("## first\n\nbody\n\n", log)
    with open(log, "a") as f:
        f.write("## killed mid-entry | 3 | 0.5")  # a writer killed mid-entry
    append_experiment_log("## second (x)\n\nbody\n\n", log)
    lines = log.read_text().splitlines()
    assert "## second (x)" in lines and "## killed mid-entry | 3 | 0.5" in lines


def test_an_entry_after_a_complete_one_adds_no_blank_lines(tmp_path: Path):
    log = tmp_path / "log.md"
    append_experiment_log("## a\n\n", log)
    append_experiment_log("## b\n\n", log)
    assert "## a\n\n## b\n\n" in log.read_text()
