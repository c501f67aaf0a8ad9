"""Pretraining an environment's checkpoint ladder as a job: `python -m engine pretrain`.

    python -m engine pretrain --run-dir DIR                 # a job directory the launcher prepared
    python -m engine pretrain --env ENV [--seed N] [--runs-dir R]   # makes its own job directory

The job directory is laid out like a run's (interfaces.md): `config.toml` (`kind = "pretrain"`,
env, seed, and `device = "cuda"` for a job on the GPU: see engine.train.pretrain), `status.json` (queued -> running -> done | failed | stopped, with the pid),
`metrics.jsonl` and `engine.log`. Each PPO iteration of `engine.train.pretrain.run_pretrain`
is one metrics row (`phase` "ppo", `iteration`, `iterations` planned, `env_steps`, `wall_s`,
`sr` = the deterministic SR, `det_sr`, `stoch_sr`, `logstd`); each ladder role, as it is
chosen, is one row with `phase` "ladder" (role, iteration, det / stoch SR or the critic's fit).
The ladder itself is written where `run_pretrain` writes it (`checkpoints/<env>/index.json`).
Like a run's worker, the job holds the directory's lock (engine.runlock) for its life.
SIGTERM / SIGINT stop the job (`stopped`, exit 143): the ladder index is written only at the
very end, so a stopped job leaves the previous ladder as it was.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from engine.config.tomlio import read_toml, write_flat
from engine.envs import check_env_id
from engine.errors import UserError
from engine.records import RecordError, RunRecorder, new_run_dir, now_iso, read_status, runs_dir, write_status
from engine.runlock import adopt_or_lock
from engine.runtime import configure_threads
from engine.worker import StopRequested, StopSignal

KIND = "pretrain"
EXIT_DONE, EXIT_FAILED, EXIT_STOPPED = 0, 1, 143


def job_name(env_id: str) -> str:
    return f"pretrain-{env_id.replace(':', '-').replace('/', '-')}"


def is_pretrain_job(conf: dict[str, Any]) -> bool:
    return conf.get("kind") == KIND


def check_device(device: str) -> None:
    """UserError (one line) unless `device` is cpu, or cuda where torch sees a GPU."""
    if device not in ("cpu", "cuda"):
        raise UserError(f"device {device!r}: use cpu or cuda")
    if device == "cuda":
        # torch: the launcher imports this module, and `import torch` took 5.1 s (perf_counter) of a start
        from engine.train.device import run_device

        run_device(device)


def prepare_job(env_id: str, *, seed: int = 0, runs_root: str | Path | None = None, command: str | None = None,
                device: str = "cpu") -> Path:
    """Make the job directory: config.toml, findings.json (empty) and status.json (queued)."""
    check_env_id(env_id)
    check_device(device)
    run_dir = new_run_dir(runs_dir(runs_root), job_name(env_id))
    conf = {"kind": KIND, "env": env_id, "seed": int(seed), "preset": KIND, "exp_name": job_name(env_id),
            "command": command or f"playground pretrain --env {env_id} --seed {seed}"
                                  + (f" --device {device}" if device != "cpu" else "")}
    if device != "cpu":
        conf["device"] = device
    try:
        write_flat(run_dir / "config.toml", conf, header=f"job {run_dir.name}: pretraining the checkpoint ladder")
        (run_dir / "findings.json").write_text("[]\n")
        write_status(run_dir, "queued", pid=None, started=None, ended=None, exit_code=None, error=None,
                     created=now_iso())
    except OSError as e:
        raise RecordError(f"cannot write job directory {run_dir} ({e.strerror or e})") from None
    return run_dir


def read_job_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.toml"
    try:
        conf = read_toml(path)
    except Exception as e:  # noqa: BLE001 - a missing or broken file: one line
        raise RecordError(f"{path}: cannot be read as a pretraining job ({e})") from None
    if not is_pretrain_job(conf) or not isinstance(conf.get("env"), str):
        raise RecordError(f"{path} is not a pretraining job (kind = \"pretrain\" and env are needed)")
    return conf


def _row(info: dict) -> dict:
    if info.get("phase") == "ladder":
        return dict(info)
    row = {"phase": "ppo", **{k: v for k, v in info.items() if k != "phase"}}
    row["sr"] = info.get("det_sr")
    return row


def _describe(info: dict) -> str:
    if info.get("phase") == "ladder":
        if "det_sr" in info:
            return (f"ladder: {info.get('role')} = iteration {info.get('iteration')} "
                    f"(det SR {info.get('det_sr', 0):.3f}, stoch SR {info.get('stoch_sr', 0):.3f})")
        return f"ladder: {info.get('role')} fitted on {info.get('fitted_on')} (R^2 {info.get('fit_r2', float('nan')):.3f})"
    return (f"PPO iteration {info.get('iteration')}/{info.get('iterations', '?')}: env steps {info.get('env_steps')}, "
            f"det SR {info.get('det_sr', 0):.3f}, stoch SR {info.get('stoch_sr', 0):.3f}, wall {info.get('wall_s')}s")


def run_job(run_dir: Path) -> int:
    """Run the pretraining job of `run_dir` in this process, holding the directory's lock
    (engine.runlock: handed down by the launcher, else taken here) like a run's worker;
    returns the exit code."""
    try:
        lock = adopt_or_lock(run_dir)
    except OSError as e:
        print(f"error: cannot open job directory {run_dir} ({e.strerror or e})", file=sys.stderr)
        return 2
    if lock is None:
        print(f"error: job {run_dir.name} already has a live worker: stop it first with "
              f"`playground stop {run_dir.name}`", file=sys.stderr)
        return 2
    try:
        return _run_locked(run_dir)
    finally:
        os.close(lock)


def _run_locked(run_dir: Path) -> int:
    from engine.train import pretrain as pretrain_mod  # torch (5.1 s): only in the job's own process

    stop = StopSignal()
    stop.install()
    try:
        conf = read_job_config(run_dir)
        rec = RunRecorder(run_dir, tensorboard=False)
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        write_status(run_dir, "failed", exit_code=EXIT_FAILED, error=str(e))
        return EXIT_FAILED
    env_id, seed, device = conf["env"], int(conf.get("seed", 0)), str(conf.get("device", "cpu"))
    rec.status("running", pid=os.getpid(), started=now_iso(), ended=None, exit_code=None, error=None)
    rec.log.info("pretraining the checkpoint ladder of %s (seed %d, device %s)", env_id, seed, device)

    def progress(info: dict) -> None:
        with stop.critical():
            rec.metrics(_row(info))
            rec.log.info("%s", _describe(info))

    try:
        index = pretrain_mod.run_pretrain(env_id, seed=seed, progress=progress, device=device)
        pre = index.get("pretrain") or {}
        rec.log.info("ladder written: roles %s; %s PPO iterations, %s env steps, %s s", ", ".join(index.get("roles") or {}),
                     pre.get("iterations_run"), pre.get("env_steps"), pre.get("wall_s"))
        code = EXIT_DONE
        rec.status("done", exit_code=code, roles=sorted(index.get("roles") or {}))
    except StopRequested:
        rec.log.info("stop requested: pretraining abandoned; the ladder index was not rewritten")
        code = EXIT_STOPPED
        rec.status("stopped", exit_code=code)
    except UserError as e:
        rec.log.error("%s", e)
        code = EXIT_FAILED
        rec.status("failed", exit_code=code, error=" ".join(e.lines()))
    except Exception as e:  # noqa: BLE001 - recorded, then the job ends failed
        rec.log.error("unexpected error\n%s", traceback.format_exc())
        code = EXIT_FAILED
        rec.status("failed", exit_code=code, error=f"{type(e).__name__}: {e}")
    rec.close()
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine pretrain",
                                description="Pretrain an environment's checkpoint ladder as a job with a run directory.")
    p.add_argument("--run-dir", type=Path, help="a job directory prepared by the launcher")
    p.add_argument("--env", help="environment id (makes a new job directory under --runs-dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, or cuda (networks, tensors and maniskill: envs on the GPU)")
    p.add_argument("--runs-dir", type=Path, default=None, help="runs directory (default ./runs or $PLAYGROUND_RUNS_DIR)")
    args = p.parse_args(argv)
    try:
        configure_threads()  # a bad PLAYGROUND_THREADS* is a UserError (engine.settings), one line below
        if args.run_dir is None:
            if not args.env:
                p.error("give --run-dir DIR, or --env ENV to start a new job")
            run_dir = prepare_job(args.env, seed=args.seed, runs_root=args.runs_dir, device=args.device)
            print(run_dir, flush=True)
        else:
            run_dir = args.run_dir
            if not run_dir.is_dir() or read_status(run_dir) is None:
                print(f"error: {run_dir} is not a prepared job directory", file=sys.stderr)
                return 2
    except UserError as e:
        for line in e.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return run_job(run_dir)
