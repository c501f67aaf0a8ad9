"""Shared test setup: one torch thread per process (see engine.runtime), and run records of
tests kept out of the repository's experiments/log.md and checkpoints/ (and the package's
shipped ladders ignored unless a test turns them back on)."""
import os

import pytest

from engine.runtime import configure_threads

configure_threads()


@pytest.fixture(autouse=True)
def _isolated_records(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("PLAYGROUND_EXPERIMENTS_LOG", os.environ.get("PLAYGROUND_TEST_LOG", str(base / "experiments-log.md")))
    if "PLAYGROUND_CHECKPOINTS_DIR" not in os.environ:
        monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(base / "checkpoints-empty"))
    if "PLAYGROUND_SHIPPED_LADDERS" not in os.environ:  # tests see an env without a ladder unless they ask
        monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "0")
