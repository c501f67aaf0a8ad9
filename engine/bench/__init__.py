"""Benchmarks: `python -m engine.bench.<name>` measures rates and ratios in one run."""
