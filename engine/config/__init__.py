"""Run configuration: the typed schema, TOML I/O and (in loading.py) preset resolution."""
from .schema import FIELDS, RunConfig

__all__ = ["RunConfig", "FIELDS"]
