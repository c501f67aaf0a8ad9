"""Following a worker from the CLI: a run or a pretraining job, started by this command.

`follow_worker(proc)` shows the worker's progress until it ends: a live rich display on a
terminal (`engine.cli.live.ProgressView`), one plain line per iteration elsewhere (pipes, CI;
on stderr when stdout carries JSON). Ctrl-C, SIGTERM and SIGHUP stop the worker cleanly (a
second Ctrl-C kills it) and are reported as `interrupted`.

`build_ladder(env)` is the CLI side of "a ladder role is missing": it starts a pretraining job
for the env (or follows the one already running there) and follows it like a run.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer
from rich.live import Live

from engine.launcher import (TERMINAL, RunDeleted, RunProcess, RunProgress, active_pretrain, final_status, follow,
                             start_pretrain)

from .common import console, say
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, CliError
from .live import ProgressView


@contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP to the launcher act like Ctrl-C while a worker is followed, so the
    worker is stopped cleanly instead of being orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt

    old = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def stop_cleanly(proc: RunProcess, grace_s: float) -> None:
    say(f"interrupted: stopping the worker (pid {proc.pid}); it saves its state (up to {grace_s:g}s) ...",
        json_mode=True)
    try:
        proc.stop(grace_s)
    except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
        say("second interrupt: killing the worker now", json_mode=True)
        proc.stop(0)


def follow_worker(proc: RunProcess | None, run_dir: Path, *, json_mode: bool, grace_s: float = 10.0,
                  pretrain: bool = False, plain_to_stderr: bool | None = None) -> tuple[dict, bool]:
    """Follow the worker to its end with the progress display; (final status, interrupted).
    `proc` is None when the worker was started by another process (it is followed, and not
    stopped on Ctrl-C: this command did not start it)."""
    prog = RunProgress(run_dir)
    view = ProgressView(prog, pretrain=pretrain)
    err = json_mode if plain_to_stderr is None else plain_to_stderr
    con = console(stderr=err)
    interrupted = False
    try:
        with interrupt_on_termination():
            try:
                if json_mode and not pretrain:  # the JSON summary at the end is the whole output
                    for ev in follow(run_dir, proc=proc):
                        prog.add(ev)
                elif con.is_terminal:
                    with Live(get_renderable=view.render, console=con, refresh_per_second=4, transient=False):
                        for ev in follow(run_dir, proc=proc):
                            prog.add(ev)
                else:
                    for ev in follow(run_dir, proc=proc):
                        n_notes = len(prog.notes)
                        prog.add(ev)
                        if ev.kind == "metrics":
                            if len(prog.notes) > n_notes:
                                typer.echo(view.note_line(prog.notes[-1]), err=err)
                            else:
                                typer.echo(view.plain_line(), err=err)
                        elif ev.kind == "status" and ev.data.get("status") not in TERMINAL:
                            typer.echo(f"status: {ev.data.get('status')}", err=err)
            except KeyboardInterrupt:
                interrupted = True
                if proc is not None:
                    stop_cleanly(proc, grace_s)
    except RunDeleted as e:
        if proc is not None:
            proc.stop(grace_s)
        raise CliError([str(e) + ("; its worker was stopped" if proc is not None else "")], code=EXIT_FAILED) from None
    finally:
        if proc is not None and proc.popen.poll() is None and not proc.detached:
            proc.stop(grace_s)
    if proc is not None:
        proc.wait()  # reap; reconciles the status with the exit code
    return final_status(run_dir, proc), interrupted


def build_ladder(env_id: str, roles: str, *, runs_dir: Path, json_mode: bool, seed: int = 0,
                 grace_s: float = 10.0) -> None:
    """Pretrain `env_id`'s checkpoint ladder as a job (or follow the job already doing it) and
    wait for it; CliError when it does not end `done`."""
    typer.echo(f"env {env_id} has no {roles} checkpoint yet: building its checkpoint ladder first "
               f"(same as `playground pretrain --env {env_id}`; one-time, a few minutes)", err=json_mode)
    run_ladder_job(env_id, runs_dir=runs_dir, json_mode=json_mode, seed=seed, grace_s=grace_s)


def run_ladder_job(env_id: str, *, runs_dir: Path, json_mode: bool, seed: int = 0, grace_s: float = 10.0,
                   command: str | None = None, device: str = "cpu") -> Path:
    """Start (or join) the pretraining job of `env_id` and follow it to its end; its directory."""
    running = active_pretrain(env_id, runs_dir)
    if running is not None:
        proc, run_dir = None, running
        say(f"pretraining of {env_id} is already running as {running.name}: following it", json_mode=json_mode)
    else:
        proc = start_pretrain(env_id, seed=seed, runs_dir=runs_dir, command=command, device=device)
        run_dir = proc.run_dir
        say(f"pretraining job {run_dir.name} (pid {proc.pid}, log {run_dir / 'engine.log'})", json_mode=json_mode)
    status, interrupted = follow_worker(proc, run_dir, json_mode=json_mode, grace_s=grace_s, pretrain=True,
                                        plain_to_stderr=json_mode)
    if interrupted:
        if proc is None:
            typer.echo(f"interrupted: stopped following {run_dir.name}; that pretraining job keeps running "
                       f"(stop it with `playground stop {run_dir.name}`)", err=True)
        else:
            typer.echo(f"pretraining {env_id} interrupted: the ladder index was not written; "
                       f"run `playground pretrain --env {env_id}` again", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if status.get("status") != "done":
        why = " ".join(str(status.get("error") or "no reason recorded").split())
        raise CliError([f"pretraining env {env_id} ended {status.get('status')}: {why[:400]} "
                        f"(job {run_dir}; its engine.log has the details)"], code=EXIT_FAILED)
    return run_dir


def ensure_ladders(missing: dict[str, str], *, pretrain: bool, runs_dir: Path, json_mode: bool) -> bool:
    """`missing` maps env ids to the roles they lack ("'start' (checkpoint), ..."). Builds each
    env's ladder (`pretrain`), or refuses naming the command that builds it; True when
    something was built (the caller plans again)."""
    for env_id, roles in missing.items():
        if not pretrain:
            raise CliError([f"env {env_id} has no {roles} checkpoint yet (--no-pretrain given): build its ladder "
                            f"with `playground pretrain --env {env_id}`, or set the key to a checkpoint file or none"])
        build_ladder(env_id, roles, runs_dir=runs_dir, json_mode=json_mode)
    return bool(missing)


def still_missing(env_id: str, roles: str) -> CliError:
    return CliError([f"pretraining env {env_id} did not produce a {roles} checkpoint (see "
                     f"`playground checkpoints --env {env_id}`): set the key to a checkpoint file or none"])
