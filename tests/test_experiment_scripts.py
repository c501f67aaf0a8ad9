"""The experiment scripts under experiments/ that docs/seed-fidelity.md cites run and write what they say."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine import checkpoints as ck

ROOT = Path(__file__).resolve().parents[1]


def test_critic_seed_recipe_writes_a_critic_that_critic_checkpoint_accepts(tmp_path):
    out = tmp_path / "critic.pt"
    res = subprocess.run([sys.executable, str(ROOT / "experiments" / "critic_seed_recipe.py"), "--envs", "16",
                          "--rollouts", "2", "--epochs", "3", "--batch", "64", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_SHIPPED_LADDERS": "1"})
    assert res.returncode == 0, res.stderr
    assert "data: 1,600 states from expert" in res.stdout and "val R^2" in res.stdout
    blob = ck.load_checkpoint(out)
    assert blob.meta["kind"] == "critic" and blob.meta["samples"] == 1600 and blob.meta["fitted_on"] == "expert"
    resolved = ck.resolve_checkpoint(str(out), "pickcube-lite")  # a path: what --critic_checkpoint takes
    assert resolved.path == out
