"""The same experiment on cpu and cuda (needs a GPU: skipped without one; `python -m
engine.bench.devices` is the fuller check with several finetune seeds on each device)."""
from __future__ import annotations

import pytest
import torch

from engine.bench import devices

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(autouse=True)
def shipped(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "1")


def test_transitions_agree_on_cpu_and_cuda():
    res = devices.transitions_check("cuda", num_envs=1024)
    assert res["max_abs"] <= devices.TRANSITION_TOL and res["flags"] == 0


def test_the_start_policys_eval_sr_is_identical():
    res = devices.eval_check("cuda")
    assert res["cpu"] == res["cuda"]


def test_a_short_finetune_on_cuda_matches_the_cpu_within_its_ci():
    res = devices.finetune_check("offline-mc16-awr", {"mc_samples": 2, "num_iterations": 10}, [0, 1, 2], device="cuda")
    assert res["ok"], res
