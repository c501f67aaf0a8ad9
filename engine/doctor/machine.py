"""The machine doctor: the facts that decide how runs go on this machine (torch build and devices,
the threads the governor would use, free memory and disk where runs are written, ManiSkill and
SAPIEN's rendering device and PhysX GPU library). Plain data; the fronts print it."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import psutil

from .. import runtime
from ..envs.sapien_headless import needs_stand_in, probe_rendering_device
from .physx import physx_gpu_library


def _torch() -> dict[str, Any]:
    import torch  # the launcher imports this module: `import torch` took 5.1 s (perf_counter) of a CLI start

    cuda = torch.cuda.is_available()
    devices = [{"index": i, "name": torch.cuda.get_device_name(i),
                "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
               for i in range(torch.cuda.device_count())] if cuda else []
    return {"version": torch.__version__, "build": f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU",
            "cuda_available": cuda, "devices": devices}


def _threads() -> dict[str, Any]:
    mode = runtime.threads_mode()
    cores = runtime.usable_cores()
    cap = max(1, min(runtime.AUTO_MAX_THREADS, cores, runtime._int_env(runtime.THREADS_MAX_ENV) or runtime.AUTO_MAX_THREADS))
    return {"mode": mode, "usable_cores": cores, "cpu_count": os.cpu_count(),
            "max_threads": mode if isinstance(mode, int) else cap}


def _disk(runs_dir: Path) -> dict[str, Any]:
    probe = Path(runs_dir).resolve()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return {"runs_dir": str(runs_dir), "free_gib": round(usage.free / 2**30, 1),
            "total_gib": round(usage.total / 2**30, 1)}


def _maniskill() -> dict[str, Any]:
    out: dict[str, Any] = {"importable": False, "version": None, "error": None, "rendering_device": None,
                           "headless_stand_in": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mani_skill  # the import is the probe; 22 s (perf_counter, torch included): only when asked
        out.update(importable=True, version=getattr(mani_skill, "__version__", None))
    except Exception as e:  # noqa: BLE001 (any import failure is the fact to report)
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    try:
        has_device = bool(probe_rendering_device())
    except Exception:  # noqa: BLE001 (a probe that fails counts as no device, as needs_stand_in does)
        has_device = False
    out.update(rendering_device=has_device, headless_stand_in=needs_stand_in(lambda: has_device))
    return out


def machine_report(runs_dir: str | Path = "runs") -> dict[str, Any]:
    """Every fact as plain data (JSON-ready)."""
    mem = psutil.virtual_memory()
    lib = physx_gpu_library()
    return {"torch": _torch(), "threads": _threads(),
            "memory": {"total_gib": round(mem.total / 2**30, 1), "available_gib": round(mem.available / 2**30, 1)},
            "disk": _disk(Path(runs_dir)), "maniskill": _maniskill(),
            "physx_gpu": lib.to_dict() if lib is not None else None}


def machine_notes(report: dict[str, Any]) -> list[str]:
    """What the facts mean for runs here, one line each."""
    notes = []
    t, ms, px = report["torch"], report["maniskill"], report.get("physx_gpu")
    if not t["cuda_available"]:
        notes.append("no CUDA device: runs train on the CPU (`device = cuda` is refused)")
    if not ms["importable"]:
        notes.append(f"ManiSkill is not importable ({ms['error']}): only pickcube-lite runs here")
    elif ms["headless_stand_in"]:
        notes.append("SAPIEN finds no rendering device: ManiSkill envs run with the headless stand-in (no videos)")
    if ms["importable"] and t["cuda_available"] and px and not px["present"]:
        notes.append(f"SAPIEN's PhysX GPU library is missing: `device cuda` ManiSkill runs are refused until "
                     f"{px['url']} is unzipped into {Path(px['library']).parent}/")
    if report["disk"]["free_gib"] < 2:
        notes.append(f"only {report['disk']['free_gib']} GiB free where runs are written")
    return notes
