"""Offline RL Playground engine: environments, networks, advantage estimators, policy updates,
training loops, checkpoints and run records, plus the worker the launcher spawns."""
__version__ = "0.1.0"
