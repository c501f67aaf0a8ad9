"""`playground doctor [RUN] [--json]`: the run doctor (a run's metrics -> findings: symptom, the
known issue it matches, the fix as flags) or, with no RUN, the machine doctor (torch build and
devices, threads, memory and disk, ManiSkill, SAPIEN's rendering device and PhysX GPU library).
Exit 0; 1 when the run has an error-level finding; 2 unusable input."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from engine.launcher import diagnose_run, machine_notes, machine_report, resolve_run, summarize_run

from .common import fix_flags, print_json, runs_dir_of
from .errors import EXIT_FAILED, EXIT_OK, cli_errors


def print_diagnoses(diagnoses: list, *, err: bool = False) -> None:
    """Each finding: id, severity, title; the symptom; the known issue; the fix as flags."""
    for d in diagnoses:
        color = {"error": "red", "warning": "yellow"}.get(d.severity, "cyan")
        typer.echo(f"{typer.style(d.id, bold=True)} {typer.style(d.severity, fg=color, bold=True)}: {d.title}", err=err)
        typer.echo(f"    symptom: {d.symptom}", err=err)
        typer.echo(f"    known issue: {d.known_issue}", err=err)
        if d.fix:
            typer.echo(f"    fix: {fix_flags(d.fix)}", err=err)


def doctor_summary(run_dir: Path, *, err: bool = False) -> list:
    """The doctor's lines at the end of `run` / `sweep`: findings, or that it found nothing."""
    diagnoses = diagnose_run(run_dir)
    if diagnoses:
        typer.echo(f"doctor: {len(diagnoses)} finding{'s' if len(diagnoses) != 1 else ''} for {run_dir.name} "
                   f"(`playground doctor {run_dir.name}`)", err=err)
        print_diagnoses(diagnoses, err=err)
    else:
        typer.echo(f"doctor: no findings for {run_dir.name}", err=err)
    return diagnoses


def _machine_text(r: dict[str, Any]) -> None:
    t, th, ms, px = r["torch"], r["threads"], r["maniskill"], r["physx_gpu"]
    devs = ", ".join(f"cuda:{d['index']} {d['name']} ({d['memory_gib']} GiB)" for d in t["devices"]) or "none"
    lines = [f"torch {t['version']} ({t['build']} build); CUDA devices: {devs}",
             f"threads: {th['mode']}, up to {th['max_threads']} (usable cores {th['usable_cores']} of {th['cpu_count']})",
             f"memory: {r['memory']['available_gib']} GiB available of {r['memory']['total_gib']} GiB",
             f"runs dir {r['disk']['runs_dir']}: {r['disk']['free_gib']} GiB free of {r['disk']['total_gib']} GiB",
             f"ManiSkill: {ms['version'] if ms['importable'] else 'not importable (' + str(ms['error']) + ')'}"]
    if ms["importable"]:
        lines.append("SAPIEN rendering device: " + ("found" if ms["rendering_device"] else "none")
                     + ("; headless stand-in used" if ms["headless_stand_in"] else ""))
    if px:
        lines.append(f"SAPIEN PhysX GPU library ({px['version']}): "
                     + (f"present ({px['library']})" if px["present"] else f"missing ({px['library']})"))
    for line in lines:
        typer.echo(line)
    for note in machine_notes(r):
        typer.echo(f"note: {note}")


@cli_errors
def doctor(ctx: typer.Context,
           run: Optional[str] = typer.Argument(None, help="run id (or a unique prefix / path); none: the machine doctor"),
           json_output: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
           runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="runs directory")) -> None:
    """Diagnose a run from its metrics (symptom, known issue, fix), or with no RUN this machine. Exit 0; 1 error-level finding; 2 unusable input."""
    root = runs_dir_of(ctx, runs_dir)
    if run is None:
        report = machine_report(root)
        if json_output:
            print_json({"ok": True, "machine": report, "notes": machine_notes(report)})
        else:
            _machine_text(report)
        raise typer.Exit(EXIT_OK)
    run_dir = resolve_run(run, root)
    summary = summarize_run(run_dir)  # (a dead worker's run is reconciled to failed first)
    diagnoses = diagnose_run(run_dir)
    errors = [d for d in diagnoses if d.severity == "error"]
    if json_output:
        print_json({"ok": not errors, "run_id": run_dir.name, "status": summary.status,
                    "findings": [d.to_dict() for d in diagnoses]})
    elif diagnoses:
        typer.echo(f"{run_dir.name}: {len(diagnoses)} finding{'s' if len(diagnoses) != 1 else ''}")
        print_diagnoses(diagnoses)
    else:
        typer.echo(f"{run_dir.name}: no findings")
    raise typer.Exit(EXIT_FAILED if errors else EXIT_OK)


def sweep_doctor(run_dirs: list[Path]) -> None:
    """The doctor's lines at the end of a sweep: each run with findings, then how many had none."""
    clean = 0
    for d in run_dirs:
        if not Path(d).is_dir() or not diagnose_run(d):
            clean += 1
            continue
        doctor_summary(Path(d))
    if clean:
        typer.echo(f"doctor: no findings for {clean} run{'s' if clean != 1 else ''}")
