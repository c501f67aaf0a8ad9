"""SAPIEN's PhysX GPU library: where SAPIEN looks for it, and the one-line refusal of a
`device = cuda` ManiSkill run on a machine that lacks it.

ManiSkill's physx_cuda backend calls `sapien.physx.enable_gpu()`, which downloads
`linux-so.zip` (`libPhysXGpu_64.so`) from GitHub into `~/.sapien/physx/<physx version>/` on first
use. On an offline GPU machine that download fails at env build ("cannot build ManiSkill task
'PickCube-v1' (ConnectionError: ...)"), after the run has started. `physx_gpu_library()` looks
without importing more than `sapien.physx` (and without downloading anything)."""
from __future__ import annotations

import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError

RELEASES = "https://github.com/sapien-sim/physx-precompiled/releases/download"


class PhysxMissing(UserError):
    """device cuda on a maniskill: env, and SAPIEN's PhysX GPU library is not on this machine."""


@dataclass
class PhysxGpu:
    version: str          # SAPIEN's PhysX build, e.g. 105.1-physx-5.3.1.patch0
    folder: Path          # ~/.sapien/physx/<version>/
    library: Path         # the file SAPIEN loads
    url: str              # the zip SAPIEN would download

    @property
    def present(self) -> bool:
        return self.library.is_file()

    def to_dict(self) -> dict:
        return {"version": self.version, "library": str(self.library), "present": self.present, "url": self.url}


def _names() -> tuple[str, str]:
    machine = platform.machine()
    if platform.system() == "Windows":
        return "PhysXGpu_64.dll", "windows-dll.zip"
    return "libPhysXGpu_64.so", ("linux-aarch64-so.zip" if machine in ("aarch64", "arm64") else "linux-so.zip")


def physx_gpu_library(home: Path | None = None) -> PhysxGpu | None:
    """Where SAPIEN wants its PhysX GPU library (None when SAPIEN is not installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sapien warns when it falls back to its own libvulkan
            import sapien.physx as sp  # the import is the probe (optional; 1.35 s measured): only when asked
        version = str(sp.version())
    except Exception:  # noqa: BLE001 (not installed, or a broken install: ManiSkill itself will say)
        return None
    lib, zipname = _names()
    folder = (home or Path.home()) / ".sapien" / "physx" / version
    return PhysxGpu(version, folder, folder / lib, f"{RELEASES}/{version}/{zipname}")


def require_physx_gpu(env: str, device: str, home: Path | None = None) -> None:
    """Refuse (PhysxMissing, one line) a `device cuda` run of a `maniskill:` env when SAPIEN's PhysX
    GPU library is missing; nothing for other envs or devices."""
    if str(device) != "cuda" or not str(env).startswith("maniskill:"):
        return
    lib = physx_gpu_library(home)
    if lib is None or lib.present:
        return
    raise PhysxMissing(
        f"device cuda on {env} needs SAPIEN's PhysX GPU library {lib.library.name} (PhysX {lib.version}), which is "
        f"not in {lib.folder}/ (SAPIEN would download it from GitHub at env build and fails offline): download "
        f"{lib.url} and unzip it into {lib.folder}/, or run with --device cpu")
