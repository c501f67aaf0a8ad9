"""Run records: the layout of `runs/<run_id>/` and the files in it (interfaces.md).

- `new_run_dir` makes a unique run directory (atomic mkdir: two runs started in the same
  second get distinct ids).
- `RunRecorder` is the worker's writer: `status.json` (atomic replace), `metrics.jsonl` (one
  line per iteration, flushed), TensorBoard scalars, `engine.log`, `checkpoints/`.
- `iteration_line` is the readable engine.log line the recorder writes for every metrics row.
- `read_metrics` / `read_status` are the tolerant readers (a partial last line is skipped).
- `append_experiment_log` writes the `experiments/log.md` entry under a file lock, so runs that
  finish together do not interleave. The log belongs to the project holding the runs directory
  (`experiments_log_path`), not to the current directory; `PLAYGROUND_EXPERIMENTS_LOG` overrides.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

from . import oslock
from . import settings
from .errors import UserError
from .sr import peak_sr

STATUSES = ("queued", "running", "done", "failed", "stopped")
TERMINAL = ("done", "failed", "stopped")


class RecordError(UserError, OSError):
    """A run directory problem a user can fix (cannot write, not a run)."""


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def runs_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or settings.get("PLAYGROUND_RUNS_DIR"))


def project_root(path: str | Path) -> Path | None:
    """The top of the git work tree that contains `path`, or None (not in a repository, or no git)."""
    p = Path(path)
    while not p.is_dir():
        if p.parent == p:
            return None
        p = p.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=p, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else None


def experiments_log_path(run_dir: str | Path | None = None) -> Path:
    """Where a run's experiment-log entry goes: `$PLAYGROUND_EXPERIMENTS_LOG` when set, else
    `experiments/log.md` of the project that holds the run: the git repository containing the
    runs directory, or (outside any repository) the folder the runs directory sits in. Never the
    current directory's project: a run started from elsewhere logs where its records are."""
    explicit = settings.get("PLAYGROUND_EXPERIMENTS_LOG")
    if explicit:
        return Path(explicit)
    if run_dir is None:
        return Path("experiments/log.md")
    runs = Path(run_dir).resolve().parent
    return (project_root(runs) or runs.parent) / "experiments" / "log.md"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "run"


def _unusable(path: Path, why: str) -> RecordError:
    return RecordError(f"runs directory {path} {why}: pass --runs-dir or set PLAYGROUND_RUNS_DIR to a writable folder")


def ensure_runs_dir(path: str | Path) -> Path:
    """Prove that runs can be written under `path` (RecordError otherwise) WITHOUT creating
    anything: the directory is made when the first run directory is (`new_run_dir`), so input
    refused after this check leaves no trace. A missing directory is fine when its nearest
    existing parent is a writable directory."""
    path = Path(path)
    probe = path
    try:
        while not probe.exists():
            if probe.is_symlink():
                raise _unusable(path, f"is a dangling link ({probe})")
            if probe.parent == probe:
                break
            probe = probe.parent
        if not probe.is_dir():
            where = "is" if probe == path else f"cannot be created: {probe} is"
            raise _unusable(path, f"{where} a file, not a directory")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise _unusable(path, "is not writable" if probe == path else f"cannot be created in {probe} (not writable)")
    except OSError as e:
        if isinstance(e, RecordError):
            raise
        raise _unusable(path, f"cannot be used ({e.strerror or e})") from None
    return path


def _make_runs_dir(path: Path) -> Path:
    """Create the runs directory (when the first run is written) and prove it is writable."""
    ensure_runs_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unusable(path, f"cannot be created ({e.strerror or e})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise _unusable(path, f"is not writable ({e.strerror or e})") from None
    return path


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create `<root>/<YYYYmmdd-HHMMSS>-<name>[-N]` atomically (and `root` if needed) and return it."""
    root = _make_runs_dir(Path(root))
    base = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{_slug(name)}"
    for n in range(1, 10_000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise RecordError(f"cannot create run directory {path} ({e.strerror})") from None
    raise RecordError(f"too many runs named {base} in {root}")


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (write a temporary file beside it, then rename).
    A failed write (a full or read-only disk) raises OSError and leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def write_status(run_dir: Path, status: str, **fields: Any) -> dict:
    """Merge `fields` into status.json and set `status` (atomic replace)."""
    assert status in STATUSES, status
    cur = read_status(run_dir) or {"pid": None, "started": None, "ended": None, "exit_code": None, "error": None}
    cur.update(fields)
    cur["status"] = status
    if status in TERMINAL and not cur.get("ended"):
        cur["ended"] = now_iso()
    atomic_write(Path(run_dir) / "status.json", json.dumps(cur, indent=1))
    return cur


def read_status(run_dir: str | Path) -> dict | None:
    """status.json as a dict; None when it is missing, unreadable or not a JSON object."""
    p = Path(run_dir) / "status.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):  # ValueError: bad JSON or bytes that are not UTF-8
        return None
    return data if isinstance(data, dict) else None


def _finite_or_none(text: str) -> float | None:
    v = float(text)
    return v if math.isfinite(v) else None


def parse_metrics_line(line: str | bytes) -> dict | None:
    """One metrics line as a dict, or None (blank, partial, corrupt or not a JSON object).
    Non-finite numbers (`Infinity`, `NaN`, `1e999`) read as None, as the writer records them,
    so no reader meets a float it cannot format or convert."""
    try:
        row = json.loads(line, parse_constant=lambda _c: None, parse_float=_finite_or_none)
    except (ValueError, RecursionError):  # ValueError: bad JSON or bytes that are not UTF-8
        return None
    return row if isinstance(row, dict) else None


def usable_iteration(row: dict) -> int | None:
    """The row's `iteration` when it is a non-negative int (not a bool), else None."""
    it = row.get("iteration")
    return it if isinstance(it, int) and not isinstance(it, bool) and it >= 0 else None


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every complete metrics line that is a JSON object; a partial or corrupt line (a writer
    mid-flush) is skipped, and an unreadable file reads as no rows."""
    p = Path(run_dir) / "metrics.jsonl"
    out: list[dict] = []
    try:
        text = p.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        row = parse_metrics_line(line.strip()) if line.strip() else None
        if row is not None:
            out.append(row)
    return out


def truncate_metrics(run_dir: str | Path, last_iteration: int) -> int:
    """Drop metrics rows past `last_iteration` (a resumed run continues from its last save);
    returns how many rows were dropped. Rows without a usable `iteration` (not a non-negative
    int) are dropped too, as the readers skip them. Call it before a RunRecorder opens the file."""
    p = Path(run_dir) / "metrics.jsonl"
    rows = read_metrics(run_dir)
    keep = [r for r in rows if (it := usable_iteration(r)) is not None and it <= last_iteration]
    if p.exists():
        atomic_write(p, "".join(json.dumps(r) + "\n" for r in keep))
    return len(rows) - len(keep)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _num(row: dict, key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def iteration_line(row: dict) -> str:
    """One readable engine.log line for a metrics row: iteration, SR +- se (and at the episode's
    end), the update's KL / losses / AWR weights' ESS where logged, the iteration's time."""
    parts = [f"iteration {row.get('iteration')}" + (f"/{row['iterations']}" if row.get("iterations") else "")]
    sr, se, end = _num(row, "sr"), _num(row, "sr_se"), _num(row, "sr_at_end")
    if sr is not None:
        parts.append(f"SR {sr:.3f}" + (f" +- {se:.3f}" if se is not None else "")
                     + (f" (at end {end:.3f})" if end is not None else ""))
    for key, label, fmt in (("approx_kl", "KL", ".4f"), ("clipfrac", "clipfrac", ".3f"), ("pg_loss", "pg_loss", ".4f"),
                            ("v_loss", "v_loss", ".4f"), ("loss", "loss", ".4f"),
                            ("explained_variance", "EV", ".2f"), ("adv_pos_frac", "adv>0", ".2f"),
                            ("weight_ess_frac", "ESS", ".2f")):
        v = _num(row, key)
        if v is not None:
            parts.append(f"{label} {v:{fmt}}")
    if row.get("stopped_early"):
        parts.append(f"KL stop after {row.get('epochs_run')} epoch(s)")
    t = _num(row, "iter_s")
    if t is not None:
        parts.append(f"{t:.1f} s")
    if _num(row, "env_steps") is not None:
        parts.append(f"env_steps {int(row['env_steps'])}")
    return ", ".join(parts)


class RunRecorder:
    """Writes one run's records. Used by the worker (engine.worker) and by pretraining."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            self._metrics = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
        except OSError as e:
            raise RecordError(f"run directory {self.run_dir} cannot be written ({e.strerror})") from None
        self.log = logging.getLogger(f"engine.run.{self.run_dir.name}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self._handler = logging.FileHandler(self.run_dir / "engine.log")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.addHandler(self._handler)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazy: only a worker with tensorboard on (torch + tensorboard, seconds)

            self._tb = SummaryWriter(log_dir=str(self.run_dir))

    def status(self, status: str, **fields: Any) -> dict:
        return write_status(self.run_dir, status, **fields)

    def metrics(self, row: dict[str, Any]) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()
        if row.get("phase") in (None, "initial"):  # (a pretraining job logs its own PPO lines)
            self.log.info("%s", iteration_line(row))
        if self._tb is not None:
            step = int(row.get("env_steps", row.get("iteration", 0)))
            for k, v in row.items():
                if k in ("iteration", "env_steps") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                self._tb.add_scalar(f"charts/{k}" if k in ("sr", "sr_at_end") else f"train/{k}", v, step)
            self._tb.flush()

    def close(self) -> None:
        self._metrics.close()
        if self._tb is not None:
            self._tb.close()
        self.log.removeHandler(self._handler)
        self._handler.close()


def run_commit(run_dir: str | Path) -> str:
    """The commit a run is logged with: that of the repository holding its runs directory, else
    that of the repository the engine itself was loaded from, else "unknown"."""
    for where in (Path(run_dir).resolve().parent, Path(__file__).resolve().parent):
        if project_root(where) is not None:
            return git_commit(where)
    return "unknown"


def git_commit(cwd: str | Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
        sha = out.stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def format_log_entry(run_dir: Path, config: dict, status: dict, metrics: Iterable[dict],
                     findings: list[dict], notes: str = "") -> str:
    rows = list(metrics)
    name = config.get("exp_name") or run_dir.name
    peak = peak_sr(rows) or 0.0
    lines = [f"## {name} ({run_dir.name})", "",
             f"- status: {status.get('status')} ({status.get('started')} -> {status.get('ended')})",
             f"- git commit: {run_commit(run_dir)}",
             f"- command: `{config.get('command') or 'python -m engine --run-dir ' + str(run_dir)}`",
             f"- preset: {config.get('preset') or '-'}; env {config.get('env')}, seed {config.get('seed')}; "
             f"{config.get('regime')} {config.get('estimator')} + {config.get('update')}",
             f"- run directory: `{run_dir}`",
             f"- peak SR {peak:.3f}; final SR {(rows[-1].get('sr') if rows else float('nan')) or 0.0:.3f}", ""]
    if findings:
        lines.append("- findings at launch: " + "; ".join(f"{f.get('id')} ({f.get('severity')}): {f.get('title')}"
                                                        for f in findings))
    else:
        lines.append("- findings at launch: none")
    if status.get("error"):
        lines.append(f"- error: {status['error']}")
    if notes:
        lines.append(f"- notes: {notes}")
    lines += ["", "| iteration | env_steps | wall_s | sr | sr_at_end |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        def f(k, fmt):
            v = r.get(k)
            return format(v, fmt) if isinstance(v, (int, float)) else "-"
        lines.append(f"| {r.get('iteration')} | {r.get('env_steps')} | {f('wall_s', '.1f')} | {f('sr', '.3f')} "
                     f"| {f('sr_at_end', '.3f')} |")
    return "\n".join(lines) + "\n\n"


def append_experiment_log(entry: str, path: Path | None = None, *, run_dir: str | Path | None = None) -> Path:
    """Append one entry to the experiment log (`experiments_log_path(run_dir)` unless `path`)
    under an exclusive lock. The entry always starts on a new line, even after a fragment left
    by a writer killed mid-entry."""
    path = Path(path or experiments_log_path(run_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:
        oslock.lock(f.fileno())
        try:
            end = f.seek(0, os.SEEK_END)  # the position from open() is stale if another writer went first
            if end == 0:
                f.write(b"# Experiment log\n\nOne entry per finished run, appended by the worker.\n\n")
            else:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a writer killed mid-entry left a fragment: close it off
                    f.write(b"\n\n")
            f.write(entry.encode("utf-8", "replace"))
            f.flush()
        finally:
            oslock.unlock(f.fileno())
    return path
