"""Run configuration: the typed schema, TOML I/O, memory limits, and (loading.py, composing presets.py,
overrides.py, values.py and checkpoint_refs.py) preset + overrides -> RunConfig."""
from .schema import FIELDS, RunConfig

__all__ = ["RunConfig", "FIELDS"]
