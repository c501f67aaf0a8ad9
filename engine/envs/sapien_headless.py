"""Running SAPIEN / ManiSkill on a machine with no rendering device (no GPU, no Vulkan driver).

Even with `render_backend='none'`, ManiSkill builds its scenes with `sapien.render.RenderMaterial(...)`
(cube colours, the ground, the robot's URDF visuals), and that constructor raises
`RuntimeError: failed to find a rendering device` when SAPIEN finds no Vulkan device. Physics does not
need the materials, so on such a machine we replace `RenderMaterial` with an inert stand-in,
everywhere the name is bound: `sapien.render`, `sapien.pysapien.render`, and every already-imported
module that did `from ... import RenderMaterial` (sapien's actor builder, renderer and URDF loader,
ManiSkill's MJCF loader, ...).

The stand-in is installed ONLY when no rendering device is found: on a machine that can render, users
want real materials (videos, RGB observations). The decision is `needs_stand_in(probe)`: the probe
constructs one real `RenderMaterial` (the very call that fails), which costs milliseconds where it
fails and nothing extra where it works (the env would create the render context anyway).
`PLAYGROUND_SAPIEN_HEADLESS=1` forces the stand-in, `=0` forbids it (then the env fails as SAPIEN
does).

Call `ensure_headless_rendering()` in every process that builds ManiSkill envs, after importing sapien
and before `import mani_skill.envs` / `gym.make`; calling it again later is cheap and patches any
module imported since.

sapien is imported inside the functions: it is optional (the ManiSkill extra) and `import sapien`
took 0.6 s here, while engine.envs.maniskill.tasks imports this module before it knows SAPIEN is there.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from .. import settings

ENV_VAR = "PLAYGROUND_SAPIEN_HEADLESS"

_original_render_material = None   # the real class, remembered on first install
_decision: bool | None = None      # cached needs_stand_in() result for this process


class HeadlessRenderMaterial:
    """An inert `sapien.render.RenderMaterial`: remembers what it is given, renders nothing.

    Accepts any constructor arguments; `set_x(v)` stores `x`, `get_x()` returns it; unknown
    attributes read as None. Only used where no rendering device exists, so nothing ever draws it.
    """

    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name.startswith("set_"):
            key = name[4:]

            def _set(*args, **kwargs):
                self.__dict__[key] = args[0] if len(args) == 1 else args

            return _set
        if name.startswith("get_"):
            key = name[4:]
            return lambda *a, **k: self.__dict__.get(key)
        return None

    def __repr__(self) -> str:
        return "HeadlessRenderMaterial()"


def probe_rendering_device() -> bool:
    """True when SAPIEN can create a render material here (a rendering device exists)."""
    import sapien.render

    original = _original_render_material or sapien.render.RenderMaterial
    try:
        original()
    except RuntimeError:
        return False
    return True


def needs_stand_in(probe: Callable[[], bool] = probe_rendering_device,
                   environ: dict | None = None) -> bool:
    """Decide whether the RenderMaterial stand-in is needed: only when `probe()` finds no device.

    `probe` returns True when a rendering device exists (a probe that raises counts as "no device").
    The environment variable PLAYGROUND_SAPIEN_HEADLESS ("1"/"0") overrides the probe.
    """
    environ = os.environ if environ is None else environ
    forced = settings.get(ENV_VAR, environ)
    if forced is not None:
        return forced
    try:
        return not bool(probe())
    except Exception:
        return True


def install_render_stand_in() -> int:
    """Bind `RenderMaterial` to the stand-in everywhere it is bound; returns how many places changed."""
    global _original_render_material
    import sapien.render
    import sapien.pysapien.render as pyrender

    if _original_render_material is None:
        current = pyrender.RenderMaterial
        _original_render_material = current if current is not HeadlessRenderMaterial else None
    original = _original_render_material
    changed = 0
    for mod in (sapien.render, pyrender):
        if getattr(mod, "RenderMaterial", None) is not HeadlessRenderMaterial:
            setattr(mod, "RenderMaterial", HeadlessRenderMaterial)
            changed += 1
    if original is not None:
        for mod in list(sys.modules.values()):
            try:
                namespace = vars(mod)
            except TypeError:
                continue
            if namespace.get("RenderMaterial") is original:
                setattr(mod, "RenderMaterial", HeadlessRenderMaterial)
                changed += 1
    return changed


def stand_in_installed() -> bool:
    import sapien.render

    return sapien.render.RenderMaterial is HeadlessRenderMaterial


def ensure_headless_rendering(probe: Callable[[], bool] | None = None) -> bool:
    """Install the stand-in if (and only if) this process has no rendering device; idempotent.

    Returns True when the stand-in is in place after the call.
    """
    global _decision
    if _decision is None:
        _decision = needs_stand_in(probe or probe_rendering_device)
    if _decision:
        install_render_stand_in()
    return _decision
