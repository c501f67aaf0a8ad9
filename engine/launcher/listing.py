"""Listing runs and resolving run references.

`list_runs(runs_dir)` reads every run directory under `runs_dir` (whoever started it) and
returns `RunSummary` rows; a run whose worker died without a final status shows as `failed`
(its error says "worker gone"). Listing never writes: it works on a read-only or full disk.
`resolve_run(ref, runs_dir)` turns a user's RUN argument (a run id, a unique prefix of one, or a path inside the runs
directory) into a directory.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.records import TERMINAL, RecordError, read_metrics, read_status
from engine.run_files import is_run_dir, planned_iterations, read_config, read_findings  # noqa: F401 (re-exported)

from .progress import RunProgress, sr_series  # noqa: F401 (sr_series: re-exported)
from .reconcile import GONE_PREFIX, reconcile
from .stall import stall_fields


@dataclass
class RunSummary:
    id: str
    path: str
    preset: str
    exp_name: str
    env: str
    seed: int | None
    regime: str
    estimator: str
    update: str
    status: str
    iteration: int | None
    env_steps: int | None
    last_sr: float | None
    peak_sr: float | None
    peak_env_steps: int | None
    planned_iterations: int | None
    started: str | None
    ended: str | None
    pid: int | None
    exit_code: int | None
    error: str | None
    stalled_since: str | None = None    # "stalled since HH:MM:SS" (engine.launcher.stall)
    stall: str | None = None            # the same with why

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "status_label": self.status_label}

    @property
    def status_label(self) -> str:
        """The status as a listing shows it: "failed (worker gone)" for a run whose worker
        vanished without a final status; "stalled since HH:MM:SS" for a running run that makes
        no progress."""
        if self.status == "running" and self.stalled_since:
            return self.stalled_since
        if self.status == "failed" and (self.error or "").startswith(GONE_PREFIX):
            return "failed (worker gone)"
        return self.status


def summarize_run(run_dir: str | Path, *, reconcile_dead: bool = True, rows: list[dict] | None = None,
                  status: dict | None = None) -> RunSummary:
    """The run's summary; `status` (e.g. `final_status`) instead of what status.json says."""
    run_dir = Path(run_dir)
    if status is None:
        status = (reconcile(run_dir, write=False) if reconcile_dead else read_status(run_dir)) or {}
    conf = read_config(run_dir)
    rows = read_metrics(run_dir) if rows is None else rows
    prog = RunProgress(run_dir, conf=conf)
    for r in rows:
        prog.add_row(r)
    seed = conf.get("seed")
    return RunSummary(
        id=run_dir.name, path=str(run_dir), preset=str(conf.get("preset") or ""),
        exp_name=str(conf.get("exp_name") or ""), env=str(conf.get("env") or ""),
        seed=seed if isinstance(seed, int) else None, regime=str(conf.get("regime") or ""),
        estimator=str(conf.get("estimator") or ""), update=str(conf.get("update") or ""),
        status=str(status.get("status") or "unknown"), iteration=prog.iteration, env_steps=prog.env_steps,
        last_sr=prog.sr, peak_sr=prog.peak.sr, peak_env_steps=prog.peak.env_steps,
        planned_iterations=prog.planned, started=status.get("started"),
        ended=status.get("ended"), pid=status.get("pid"), exit_code=status.get("exit_code"),
        error=status.get("error"), **_stall_of(run_dir, status, rows))


def _stall_of(run_dir: Path, status: dict, rows: list[dict]) -> dict:
    if "stalled_since" in status:
        return {"stalled_since": status.get("stalled_since"), "stall": status.get("stall")}
    return stall_fields(run_dir, status, rows)


def list_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run under `runs_dir`, oldest first (ids start with their creation time)."""
    root = Path(runs_dir)
    if not root.exists():
        return []
    if not root.is_dir():
        raise RecordError(f"runs directory {root} is not a directory: pass --runs-dir or set PLAYGROUND_RUNS_DIR")
    try:
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise RecordError(f"cannot read runs directory {root} ({e.strerror})") from None
    out = []
    for p in entries:
        if not is_run_dir(p) or not _under(p, root):  # a link to a run elsewhere is not one of ours
            continue
        try:
            out.append(summarize_run(p))
        except FileNotFoundError:
            continue  # deleted while we were reading it
    return out


def final_status(run_dir: str | Path, proc=None) -> dict:
    """A followed run's final status: status.json, unless the worker this process spawned
    (`proc`, a RunProcess) ended and its status could not be written (a full disk): then the
    status the launcher reconciled in memory (`failed` with the OS's reason)."""
    st = read_status(run_dir) or {}
    settled = getattr(proc, "final_status", None)
    if settled and st.get("status") not in TERMINAL:
        return dict(settled)
    return st


def run_dirs(runs_dir: str | Path) -> list[Path]:
    """Every run directory of `runs_dir`, oldest first, without reading their records: those
    inside it after resolving links (a link to a run elsewhere is left out)."""
    root = Path(runs_dir)
    try:
        return sorted(p for p in root.iterdir()
                      if not p.name.startswith(".") and is_run_dir(p) and _under(p, root))
    except OSError:
        return []


def _under(path: Path, root: Path) -> bool:
    """Whether `path` is a directory directly inside `root` (symbolic links resolved)."""
    try:
        return path.resolve().parent == root.resolve()
    except (OSError, RuntimeError):
        return False


def resolve_run(ref: str, runs_dir: str | Path) -> Path:
    """A run directory from a run id, a unique prefix of one, a run name without its time stamp,
    or a path to a run directory inside `runs_dir`. Nothing else: an empty name matches no run,
    and a directory outside the runs directory is refused (pass --runs-dir to use another). Every
    way (id, prefix, name, path) applies the same rule after resolving links: a symbolic link in
    the runs directory pointing to a run elsewhere is not a run of this directory."""
    root = Path(runs_dir)
    ref = (ref or "").strip() if isinstance(ref, str) else ""
    if not ref or ref in (".", ".."):
        raise RecordError(f"no run named: give a run id from `playground runs` (runs directory {root})")
    direct = Path(ref).expanduser()
    if "/" in ref or ref.startswith("~") or direct.is_absolute():
        if not is_run_dir(direct):
            raise RecordError(f"{ref} is not a run directory (no status.json or config.toml): "
                              "see `playground runs`")
        if not _under(direct, root):
            raise RecordError(f"{ref} is not a run in the runs directory {root}: pass --runs-dir "
                              f"{direct.resolve().parent} to use the runs there")
        return root / direct.resolve().name
    if is_run_dir(root / ref) and _under(root / ref, root):
        return root / ref
    try:
        # the same inside-the-runs-dir rule as for paths: a link to a run elsewhere matches nothing
        ids = [p.name for p in root.iterdir() if is_run_dir(p) and _under(p, root)] if root.is_dir() else []
    except OSError as e:
        raise RecordError(f"cannot read runs directory {root} ({e.strerror or e})") from None
    matches = sorted(i for i in ids if i.startswith(ref))
    if not matches:
        # a run name without its time stamp ("gae-ppo" for 20250101-120000-gae-ppo), if unique
        matches = sorted(i for i in ids if i.split("-", 2)[-1] == ref)
    if len(matches) == 1:
        return root / matches[0]
    if not matches:
        raise RecordError(f"no run matches {ref!r} in {root}: see `playground runs`")
    shown = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
    raise RecordError(f"{ref!r} matches {len(matches)} runs ({shown}): give more of the id")


def active(summary: RunSummary) -> bool:
    return summary.status not in TERMINAL
