"""A run whose status.json exists but cannot be read (corrupt JSON, not an object, bytes that are
not UTF-8, no permission): never overwrite that evidence with less.

`rebuild_status(run_dir)` reconstructs the status from the run's other records: the worker's
own closing line in engine.log (`run done at iteration N`, `run stopped ...`, `stop requested`,
or its last ERROR line), else metrics.jsonl holding every planned iteration (done). It says so
in the status (`rebuilt`). `unreadable_status(run_dir, ...)` is what the reconciler uses: the
rebuilt status, written only after the unreadable file is kept aside as
`status.json.unreadable-<time>`; or, with no evidence to go on, the file is left as it is and
the run reads as `unreadable`.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from pathlib import Path

from engine.records import TERMINAL, atomic_write, read_metrics, usable_iteration

UNREADABLE = "unreadable"
_DONE = re.compile(r" INFO run (done|stopped) at iteration (\d+)")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def has_ended(status: dict | None) -> bool:
    """A terminal status, or an unreadable one whose worker is gone (nothing more will come)."""
    st = status or {}
    return st.get("status") in TERMINAL or (st.get("status") == UNREADABLE and bool(st.get("worker_gone")))


def status_unreadable(run_dir: str | Path) -> bool:
    """status.json exists (a file, or something in its place) but does not read as a JSON object."""
    p = Path(run_dir) / "status.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return p.exists() or p.is_symlink()
    return not isinstance(data, dict)


def _log_lines(run_dir: Path) -> list[str]:
    try:
        with open(run_dir / "engine.log", "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 256 * 1024))
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _iso_of(line: str | None, fallback: Path) -> str | None:
    m = _LOG_TIME.match(line or "")
    try:
        t = (_dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") if m
             else _dt.datetime.fromtimestamp(fallback.stat().st_mtime))
    except (OSError, ValueError):
        return None
    return t.astimezone().isoformat(timespec="seconds")


def _from_log(lines: list[str]) -> tuple[str, str | None, str | None] | None:
    """(status, error, the line it rests on) from the worker's closing lines of engine.log."""
    for line in reversed(lines):
        m = _DONE.search(line)
        if m:
            return m.group(1), None, line
        if " INFO stop requested" in line:
            return "stopped", None, line
        if " ERROR " in line:
            return "failed", line.split(" ERROR ", 1)[1].strip() or "error in engine.log", line
    return None


def rebuild_status(run_dir: str | Path, planned: int | None = None) -> dict | None:
    """The run's status as its other records tell it, or None when they do not say."""
    run_dir = Path(run_dir)
    lines = _log_lines(run_dir)
    found = _from_log(lines)
    source = "engine.log"
    if found is None:
        its = [i for r in read_metrics(run_dir) if (i := usable_iteration(r)) is not None]
        if not planned or not its or max(its) + 1 < planned:
            return None
        found, source = ("done", None, None), "metrics.jsonl (every planned iteration)"
    state, error, line = found
    codes = {"done": 0, "stopped": 143, "failed": 1}
    return {"status": state, "pid": None, "started": _iso_of(lines[0] if lines else None, run_dir),
            "ended": _iso_of(line, run_dir / "engine.log"), "exit_code": codes[state], "error": error,
            "rebuilt": f"status.json was unreadable; rebuilt from {source}"}


def unreadable_status(run_dir: str | Path, *, alive: bool, write: bool, planned: int | None = None) -> dict:
    """The status of a run whose status.json cannot be read (see the module docstring). A live
    worker will write its own: until then the run reads `unreadable` and nothing is written."""
    run_dir = Path(run_dir)
    rebuilt = None if alive else rebuild_status(run_dir, planned)
    if rebuilt is None:
        why = "its worker is still running" if alive else "the other records do not say how it ended"
        return {"status": UNREADABLE, "pid": None, "started": None, "ended": None, "exit_code": None,
                "worker_gone": not alive,
                "error": f"status.json is unreadable and was left as it is ({why}); "
                         f"see engine.log and worker.out in {run_dir}"}
    if write:
        keep = run_dir / f"status.json.unreadable-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        n = 1
        while keep.exists():  # never replace an earlier kept copy
            n += 1
            keep = keep.with_name(f"{keep.name.split('~')[0]}~{n}")
        try:
            try:
                shutil.copy2(run_dir / "status.json", keep)
            except OSError:  # cannot even be read: move it aside instead
                os.replace(run_dir / "status.json", keep)
            rebuilt["rebuilt"] += f" (the unreadable file is kept as {keep.name})"
            atomic_write(run_dir / "status.json", json.dumps(rebuilt, indent=1))
        except OSError as e:
            rebuilt["rebuilt"] += f" (not saved: {e.strerror or e})"
    return rebuilt
