"""The training worker: runs one resolved config (`<run_dir>/config.toml`) into its run directory.

The launcher spawns `python -m engine --run-dir DIR [--resume]`. From then on the worker owns
`status.json`: `running` (with its pid), then `done` (exit 0), `stopped` (SIGTERM/SIGINT: it
saves, then exits 143), or `failed` (exit 1, the error in `status.json` and `engine.log`, also
when training produced non-finite values). Every finished run appends its entry to
`experiments/log.md`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from .checkpoints import CheckpointError, load_resume_state
from .config.limits import LimitError, check_fits
from .config.loading import value_problem
from .config.schema import FIELDS, RunConfig, field_type
from .config.tomlio import read_toml
from .envs import EnvError
from .errors import UserError
from .records import (RecordError, RunRecorder, append_experiment_log, format_log_entry, now_iso, read_metrics,
                      read_status, truncate_metrics)
from .runlock import adopt_or_lock
from .runtime import configure_threads
from .settings import check_all

# engine.train.device and engine.train.finetune are imported where a run needs them: they import torch
# (`import engine.train.device` took 6.4 s here, torch alone 3.3 s: time.perf_counter on the loaded 2-core
# machine), and the launcher imports this module (read_run_config, in engine.launcher.spawn) without torch.

EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 143


class StopRequested(BaseException):
    """Raised from the SIGTERM/SIGINT handler to abandon the iteration in flight."""


class StopSignal:
    """SIGTERM/SIGINT: stop now. Outside a critical section (a metrics line or a checkpoint being
    written) the handler raises StopRequested, abandoning the iteration in flight: the run keeps
    what its last completed iteration saved. Inside one, the stop waits for the section to end."""

    def __init__(self) -> None:
        self.requested = False
        self._critical = 0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        first = not self.requested
        self.requested = True
        if self._critical == 0 and first:
            raise StopRequested()

    @contextlib.contextmanager
    def critical(self):
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if self._critical == 0 and self.requested:
            raise StopRequested()


class WorkerConfigError(ValueError):
    pass


def read_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.toml"
    if not path.is_file():
        raise WorkerConfigError(f"{path} is missing: a run directory is made by `playground run`")
    try:
        raw = read_toml(path)
    except Exception as e:  # tomllib.TOMLDecodeError carries line/column
        raise WorkerConfigError(f"{path}: not valid TOML ({e})") from None
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise WorkerConfigError(f"{path}: unknown keys {', '.join(unknown)}")
    for k, v in raw.items():
        t = field_type(k)
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            raw[k] = float(v)
        elif not isinstance(v, t) or (t is int and isinstance(v, bool)):
            raise WorkerConfigError(f"{path}: key '{k}' should be {t.__name__}, got {v!r}")
        problem = value_problem(k, raw[k])
        if problem:
            raise WorkerConfigError(f"{path}: key '{k}': {problem}")
    cfg = RunConfig(**raw)
    if cfg.device != "cpu":  # e.g. a GPU run resumed, or sent by Ray, where torch sees no GPU
        from .train.device import DeviceError, run_device  # lazy: torch (see the imports)

        try:
            run_device(cfg.device)
        except DeviceError as e:
            raise WorkerConfigError(f"{path}: {e}") from None
    try:
        check_fits(cfg)
    except LimitError as e:
        raise WorkerConfigError(f"{path}: {e}") from None
    return cfg


def _drop_rows_after_last_save(run_dir: Path) -> None:
    p = run_dir / "checkpoints" / "resume.pt"
    if p.is_file():
        try:
            it = load_resume_state(p)["iteration"]
        except CheckpointError:
            return  # the trainer reports the unreadable file when it loads it
        truncate_metrics(run_dir, it)


def _final(rec: RunRecorder, state: str, **fields) -> tuple[dict, bool]:
    """Write the run's terminal status; (status, written). On a full or read-only disk the
    status stays in memory (and in engine.log / worker.out when those can still be written):
    the launcher then records the run from the worker's exit."""
    _ignore_stop_requests()
    try:
        return rec.status(state, **fields), True
    except OSError as e:
        why = f"could not write the final status '{state}' to status.json ({e.strerror or e})"
        print(f"error: {why}", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            rec.log.error("%s", why)
        return {"status": state, **fields}, False


def _ignore_stop_requests() -> None:
    """Once the status is terminal the run is over: SIGTERM/SIGINT no longer interrupt the
    closing steps (the experiment-log entry, the TensorBoard flush)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _busy_message(run_dir: Path) -> str:
    pid = None
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((run_dir / "worker.json").read_text())
        pid = info.get("pid") if isinstance(info, dict) else None
    return (f"run {run_dir.name} already has a live worker (pid {pid if pid is not None else 'unknown'}): "
            f"stop it first with `playground stop {run_dir.name}`")


def run_worker(run_dir: Path, resume: bool = False) -> int:
    try:
        lock = adopt_or_lock(run_dir)
    except OSError as e:
        print(f"error: cannot open run directory {run_dir} ({e.strerror or e})", file=sys.stderr)
        return EXIT_USAGE
    if lock is None:
        print(f"error: {_busy_message(run_dir)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_locked(run_dir, resume)
    finally:
        os.close(lock)


def _run_locked(run_dir: Path, resume: bool) -> int:
    from .train.finetune import Finetuner, TrainingError  # lazy: torch (see the imports)

    stop = StopSignal()
    stop.install()
    try:
        if resume:
            _drop_rows_after_last_save(run_dir)
        rec = RunRecorder(run_dir)
        prev = read_status(run_dir) or {}
        started = prev.get("started") if resume and prev.get("started") else now_iso()
        rec.status("running", pid=os.getpid(), started=started, ended=None, exit_code=None, error=None)
    except (RecordError, OSError) as e:
        print(f"error: run directory {run_dir} cannot be written ({getattr(e, 'strerror', None) or e})",
              file=sys.stderr)
        return EXIT_FAILED
    except StopRequested:
        return EXIT_STOPPED
    cfg = None
    trainer = None
    try:
        try:
            cfg = read_run_config(run_dir)
            rec.log.info("config: %s", json.dumps(cfg.to_dict()))
            trainer = Finetuner(cfg, run_dir=run_dir, on_row=rec.metrics, should_stop=lambda: stop.requested,
                                log=rec.log.info, critical=stop.critical)
            outcome = trainer.run(resume=resume)
            code = EXIT_DONE if outcome == "done" else EXIT_STOPPED
            rec.log.info("run %s at iteration %d", outcome, trainer.iteration)
            status, written = _final(rec, outcome, exit_code=code)
        except StopRequested:
            at = trainer.saved_iteration if trainer is not None else 0
            rec.log.info("stop requested: abandoned the iteration in flight; the last saved iteration is %d", at)
            code = EXIT_STOPPED
            status, written = _final(rec, "stopped", exit_code=EXIT_STOPPED)
        except (WorkerConfigError, TrainingError, CheckpointError, EnvError, RecordError) as e:
            error = str(e)
            rec.log.error("%s", error)
            code = EXIT_FAILED
            status, written = _final(rec, "failed", exit_code=EXIT_FAILED, error=error)
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            with contextlib.suppress(Exception):
                rec.log.error("unexpected error\n%s", traceback.format_exc())
            code = EXIT_FAILED
            status, written = _final(rec, "failed", exit_code=EXIT_FAILED, error=error)
    except StopRequested:  # a second signal while the first was being handled
        code = EXIT_STOPPED
        status, written = _final(rec, "stopped", exit_code=EXIT_STOPPED)
    if not written:
        code = EXIT_FAILED  # the run's record is incomplete: never report it as a success
    if trainer is not None:
        with contextlib.suppress(Exception):
            trainer.close()
    try:
        findings = json.loads((run_dir / "findings.json").read_text()) if (run_dir / "findings.json").is_file() else []
        cfg_dict = cfg.to_dict() if cfg is not None else {}
        append_experiment_log(format_log_entry(run_dir, cfg_dict, status, read_metrics(run_dir), findings,
                                               notes="resumed" if resume else ""), run_dir=run_dir)
    except (OSError, ValueError) as e:
        with contextlib.suppress(Exception):
            rec.log.warning("could not append to the experiment log: %s", e)
    with contextlib.suppress(Exception):
        rec.close()
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine", description="Run one resolved config into a run directory.")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--resume", action="store_true", help="continue from the run's last saved iteration")
    args = p.parse_args(argv)
    try:
        check_all()
        configure_threads()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not args.run_dir.is_dir():
        print(f"error: run directory {args.run_dir} does not exist", file=sys.stderr)
        return 2
    return run_worker(args.run_dir, resume=args.resume)
