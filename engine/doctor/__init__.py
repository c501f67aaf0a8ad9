"""The run doctor and the machine doctor (no UI here; the fronts reach them through engine.launcher).

- `diagnosis`: `Diagnosis` (id, severity, title, symptom with its numbers and iterations, the known
  issue it matches, the fix as config keys)
- `view`: `RunView`, what the rules read of a run (config, status, metrics rows, last write)
- `rules_updates` (DOC01-DOC04: AWR weights, PPO KL), `rules_signals` (DOC05 advantage bias, DOC06
  value fit), `rules_sr` (DOC07 collapse, DOC08 leaving the goal, DOC09 oscillation), `rules_health`
  (DOC10 non-finite, DOC11 stalled); thresholds sit next to each rule with their source
- `stall`: the one definition of a stalled run (`judge_stall`, `Stall`), used by DOC11 and by the
  launcher's live stall detection (engine.launcher.stall adds the worker's process state)
- `run`: `diagnose_run(run_dir)` / `diagnose_records(config, rows, status)` / `diagnose(view)` -> list[Diagnosis], worst first
- `machine`: `machine_report(runs_dir)` (facts as plain data), `machine_notes(report)`
- `physx`: `physx_gpu_library()`, `require_physx_gpu(env, device)` (the one-line refusal, `PhysxMissing`)
"""
from .diagnosis import SEVERITIES, Diagnosis
from .machine import machine_notes, machine_report
from .physx import PhysxGpu, PhysxMissing, physx_gpu_library, require_physx_gpu
from .stall import Stall, judge_stall
from .run import RULE_IDS, diagnose, diagnose_records, diagnose_run
from .view import RunView

__all__ = ["SEVERITIES", "Diagnosis", "machine_notes", "machine_report", "PhysxGpu", "PhysxMissing",
           "physx_gpu_library", "require_physx_gpu", "RULE_IDS", "diagnose", "diagnose_records", "diagnose_run", "RunView",
           "Stall", "judge_stall"]
