"""engine.bench.devices: its CPU part, and its cpu/cuda checks run with both sides on the CPU
(the only way to run their code without a GPU: they must pass trivially there)."""
from __future__ import annotations

import pytest
import torch

from engine.bench import devices


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "1")  # the start policy of the shipped ladder


def test_the_philox_emulation_gives_curands_known_answers():
    # Random123's known-answer test for Philox4x32-10 at counter 0 and key 0: 6627e8d5 e169c58d ...
    assert devices.cuda_first_randint(0) == 0xE169C58D
    assert devices.cpu_first_randint(0) != devices.cuda_first_randint(0)


def test_the_cpu_part_runs_and_sees_one_eval_set(shipped, capsys):
    res = devices.main(["--eval-sets", "2", "--cpu-only"])
    assert res["ok"] and res["eval_set"]["cpu_base"] != res["eval_set"]["cuda_base"]
    assert res["eval_set"]["sr"] == pytest.approx(0.410)          # the shipped start policy on the eval set
    assert res["eval_set"]["old_cuda_sr"] == pytest.approx(0.424)  # ... and on the one CUDA drew before
    paths = res["numeric_paths"]
    assert paths["mean_max_abs"] < 1e-4 and paths["grad_rel"] < 1e-4
    out = capsys.readouterr().out
    assert "cpu/cuda checks skipped: --cpu-only" in out


def test_the_device_checks_run_with_both_sides_on_the_cpu(shipped):
    assert devices.transitions_check("cpu", num_envs=8)["flags"] == 0
    assert devices.eval_check("cpu")["ok"]
    res = devices.finetune_check("offline-mc16-awr", {"num_envs": 4, "num_steps": 10, "num_iterations": 1,
                                                      "mc_samples": 1, "num_eval_envs": 4, "num_minibatches": 2},
                                 [0, 1], device="cpu")
    assert res["cpu"] == res["cpu"] and res["ok"]  # the same device twice: the same numbers


def test_a_bad_override_is_one_line_before_any_work(shipped, capsys):
    with pytest.raises(SystemExit) as e:
        devices.main(["--cpu-only", "--set", "mc_samples"])
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == "" and "--set 'mc_samples': use key=value" in out.err
