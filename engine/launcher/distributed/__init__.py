"""Sweeps on a Ray cluster: the launcher's Ray code, apart from the local launch core.

- `cluster`: parsing `--address`, joining a cluster or starting a local instance on loopback,
  checking a per-run resource request, shipping the engine's code (`ray_available` too)
- `backend`: `RayBackend` / `open_ray_backend`: each run's worker as a Ray task, its records
  drained into this machine's run directory
- `run_records`: what goes to a node and what comes back (a run's records without shared
  storage), and `stop_ray_run` for `playground stop`

Named `distributed`, not `ray`: a subpackage `engine.launcher.ray` would not shadow the real
library under absolute imports (`import ray` in these modules still finds Ray), but a script or
tool that puts engine/launcher/ on sys.path (running a module as a file, some type checkers'
search paths) would then find this package as `ray`; a different name rules that out and keeps
`grep "import ray"` meaning the library. Nothing is imported here: `engine.launcher` imports
`cluster` (no Ray) at start and `backend` (which imports Ray) on first use.
"""
