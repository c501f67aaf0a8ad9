"""Sweeps on a Ray cluster: the launcher's Ray code, apart from the local launch core.

- `cluster`: parsing `--address`, joining a cluster or starting a local instance on loopback,
  checking a per-run resource request, shipping the engine's code
- `backend`: `RayBackend` / `open_ray_backend`: each run's worker as a Ray task, its records
  drained into this machine's run directory
- `run_records`: what goes to a node and what comes back (a run's records without shared
  storage), and `stop_ray_run` for `playground stop`

Named `distributed`, not `ray`: a subpackage `engine.launcher.ray` would not shadow the real
library under absolute imports (`import ray` in these modules still finds Ray), but a script or
tool that puts engine/launcher/ on sys.path (running a module as a file, some type checkers'
search paths) would then find this package as `ray`; a different name rules that out and keeps
`grep "import ray"` meaning the library. This package itself imports nothing but holds
`ray_available` (which the fronts import at start); `engine.launcher` loads `cluster` and `backend` (which
imports Ray) on first use.
"""
from __future__ import annotations


def ray_available() -> bool:
    """Whether Ray can be imported here (`sweep --backend ray` asks before planning)."""
    try:
        import ray  # noqa: F401  (lazy: an optional extra, 1.2 s to import here)
    except ImportError:
        return False
    return True
