"""`playground pretrain` (build an environment's checkpoint ladder: a job in its own process,
followed with a progress display) and `playground checkpoints` (what an environment's ladder
holds)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from engine.launcher import check_device, ladder_dir, read_index, start_pretrain
from engine.launcher import rows_of_index as ladder_rows

from .common import command_line, console, ensure_runs_dir, pct, print_json, runs_dir_of
from .errors import EXIT_OK, cli_errors
from .following import run_ladder_job


def ladder_table(env_id: str, rows: list[dict]) -> Table:
    t = Table(title=f"checkpoint ladder of {env_id}", title_justify="left")
    for col, just in (("role", "left"), ("aliases", "left"), ("source", "left"), ("file", "left"), ("iteration", "right"),
                      ("log-std", "right"), ("det SR", "right"), ("stoch SR", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        note = f" (critic on {r['fitted_on']}, gamma {r['gamma']:g})" if r.get("fitted_on") and r.get("gamma") else ""
        t.add_row(r["role"], ", ".join(r["aliases"]) or "-", r.get("source") or "-", (r["file"] or "-") + note,
                  str(r["iteration"]) if r["iteration"] is not None else "-",
                  f"{r['logstd']:.2f}" if isinstance(r.get("logstd"), (int, float)) else "-",
                  pct(r.get("det_sr")), pct(r.get("stoch_sr")))
    return t


@cli_errors
def pretrain(ctx: typer.Context,
             env: str = typer.Option("pickcube-lite", "--env", help="environment id: pickcube-lite or maniskill:<TaskId>"),
             seed: int = typer.Option(0, "--seed", min=0, help="pretraining seed"),
             device: str = typer.Option("cpu", "--device", help="cpu, or cuda: networks, tensors and maniskill: "
                                                                "envs (physx_cuda) on the GPU"),
             detach: bool = typer.Option(False, "--detach", help="start the pretraining job and return; it keeps running"),
             grace: float = typer.Option(10.0, "--grace", help="seconds a stopping job gets before SIGKILL"),
             runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="runs directory (the job's directory goes there)"),
             json_output: bool = typer.Option(False, "--json", help="print the ladder as JSON on stdout")) -> None:
    """Build the checkpoint ladder (start / expert / optimal policies and critics) for an environment.

    Pretraining runs as a job in its own process with a run directory (see `playground runs`):
    this command follows it with a progress display; Ctrl-C stops it."""
    from engine.launcher import check_env_id  # here: engine.envs adds 3-25 ms to a start (python -X importtime)

    check_env_id(env)
    check_device(device)  # before anything is written
    root = ensure_runs_dir(runs_dir_of(ctx, runs_dir))
    cmd = command_line(["pretrain", "--env", env, "--seed", str(seed)] + (["--device", device] if device != "cpu" else []))
    if detach:
        proc = start_pretrain(env, seed=seed, runs_dir=root, command=cmd, device=device)
        proc.detach()
        if json_output:
            print_json({"ok": True, "detached": True, "run_id": proc.run_dir.name, "run_dir": str(proc.run_dir),
                        "pid": proc.pid})
        else:
            typer.echo(f"pretraining job {proc.run_dir.name} started (pid {proc.pid}); watch it with "
                       f"`playground show {proc.run_dir.name}`, stop it with `playground stop {proc.run_dir.name}`")
        raise typer.Exit(EXIT_OK)
    if not json_output:
        typer.echo(f"pretraining {env} (seed {seed}) ...")
    run_ladder_job(env, runs_dir=root, json_mode=json_output, seed=seed, grace_s=grace, command=cmd, device=device)
    index = read_index(env)
    rows = ladder_rows(index)
    if json_output:
        print_json({"env_id": env, "roles": rows})
        return
    console().print(ladder_table(env, rows))
    pre = index.get("pretrain") or {}
    if pre:
        typer.echo(f"{pre.get('iterations_run')} PPO iterations, {pre.get('env_steps', 0):,} env steps, "
                   f"{pre.get('wall_s')}s; finetune from it with e.g. `playground run online-mc16-awr --env {env}`")


@cli_errors
def checkpoints(env: str = typer.Option("pickcube-lite", "--env", help="environment id"),
                json_output: bool = typer.Option(False, "--json", help="JSON on stdout")) -> None:
    """The checkpoints an environment has: role and seed-name aliases, file, iteration, log-std, det and stoch SR."""
    from engine.launcher import check_env_id  # engine.envs: see pretrain()

    check_env_id(env)
    index = read_index(env)
    rows = ladder_rows(index)
    if json_output:
        print_json({"env_id": env, "dir": index.get("dir") or str(ladder_dir(env)), "roles": rows})
        return
    if not rows:
        typer.echo(f"env {env} has no checkpoints yet ({ladder_dir(env)}): build them with "
                   f"`playground pretrain --env {env}` (`playground run` also does it when needed)")
        return
    console().print(ladder_table(env, rows))
