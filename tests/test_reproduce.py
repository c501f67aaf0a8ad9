"""docs/results.md as `playground reproduce` writes it: per row n, IQM with its 95% bootstrap CI
and the mean of final SR, peak SR and SR at end beside the seed's numbers; P(X > Y) for the
pairs the issue names; the generated part between markers (the rest of the file kept); finished
runs reused on a second call."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.analysis.reproduce import BEGIN, BEST_CONFIGURATIONS, END, RowResult, splice, write_results
from engine.cli.app import app

MACHINE = {"cpu": "Test CPU", "cores": 2, "physical_cores": 1, "torch": "2.x", "torch_build": "cpu",
           "device": "cpu", "parallel": 1, "threads": "PLAYGROUND_THREADS=auto, at most 2 per worker (1 at once)"}


def run(peak, final, n=500, seed=0):
    return {"run": f"r{seed}", "status": "done", "peak_sr": peak, "final_sr": final, "sr_at_end": final - 0.1,
            "initial_sr": 0.45, "eval_episodes": n, "seed": seed, "final_sr_se": math.sqrt(final * (1 - final) / n),
            "env_steps": 1000, "wall_s": 10.0, "started": f"2026-01-01T00:0{seed}:00+00:00",
            "ended": f"2026-01-01T00:1{seed}:00+00:00"}


def rows(finals, peak=0.99):
    return [run(peak, f, seed=i) for i, f in enumerate(finals)]


def write(out, results):
    write_results(out, results, env="pickcube-lite", seeds=[0, 1, 2, 3], quick=False, commands={}, started="now",
                  wall_s=60.0, machine=MACHINE, figure="results-bands.png")
    return out.read_text()


def test_results_show_iqm_cis_pairs_and_the_machine(tmp_path):
    # oracle: a higher peak, a lower final; on-policy the other way round -> ordered on-policy > oracle
    oracle = RowResult("A", "m", 0.99, "online-mc16-awr", rows([0.70, 0.72, 0.71, 0.73], peak=0.95), 0.99)
    onpol = RowResult("B", "m", 0.96, "onpolicy-mc16-awr", rows([0.86, 0.88, 0.87, 0.89], peak=0.90), 0.95)
    gae = RowResult("C", "m", 0.93, "gae-ppo", rows([0.60, 0.95, 0.62, 0.61]), 0.93)
    text = write(tmp_path / "results.md", [oracle, onpol, gae])
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "- ours (IQM): onpolicy-mc16-awr > online-mc16-awr > gae-ppo" in text
    assert "- seed: online-mc16-awr > onpolicy-mc16-awr > gae-ppo" in text
    line = next(x for x in text.splitlines() if "(`online-mc16-awr`)" in x)
    # n, the seed's peak and final, final SR IQM 71.5% [CI], mean 71.5%, SR at end 61.5%
    assert "| 4 | 99.0% | 99.0% | **71.5% [" in line and "| 71.5% |" in line and "| 61.5% [" in line
    assert "- P(oracle > on-policy): 0.0% [0.0, 0.0], n = 4 and 4" in text
    assert "- P(on-policy > GAE PPO): 75.0% [" in text  # 12 of 16 pairs: 0.95 beats all on-policy seeds
    assert "Test CPU, 2 logical cores" in text and "torch 2.x (cpu build)" in text and "device cpu" in text
    assert "Wall time: 13.0 min from the first run's start" in text  # 00:00 -> 00:13 over the runs
    assert "![SR vs env steps" in text and "(results-bands.png)" in text
    assert "| online-mc16-awr | 3 | `r3` | done | 0.450 | 0.730 ± 0.020 | 0.950 | 0.630 |" in text


def test_the_file_outside_the_markers_is_kept(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Old table\n\nhand-written notes\n")  # a file from before the markers: all of it kept below
    r = RowResult("A", "m", 0.99, "gae-ppo", rows([0.7, 0.8]), 0.99)
    first = write(out, [r])
    assert first.index(BEGIN) < first.index(END) < first.index("# Old table") and "hand-written notes" in first
    out.write_text("intro by hand\n\n" + first + "\n## Action ranking under the seed's protocol\n\nmore\n")
    r2 = RowResult("A", "m", 0.99, "gae-ppo", rows([0.5, 0.6]), 0.99)
    second = write(out, [r2])
    assert second.startswith("intro by hand\n\n" + BEGIN)
    assert second.count(BEGIN) == 1 and "55.0%" in second and "75.0%" not in second.split(END)[0]
    assert second.rstrip().endswith("## Action ranking under the seed's protocol\n\nmore")
    assert "# Old table" in second and "hand-written notes" in second
    assert splice(None, "x") == f"{BEGIN}\nx\n{END}\n"


def test_table_rows_name_presets_at_index_3():
    """engine/cli/reproduce_cmd.py reads the preset at index 3 of every row."""
    assert [r[3] for r in BEST_CONFIGURATIONS] == ["online-mc16-awr", "onpolicy-mc16-awr", "gae-ppo",
                                                   "offline-mc16-awr", "online-mc1-awr", "iql-awr-offline"]


# --- the command, with the fake worker and the fake pretraining --------------------------------

def _fake_worker_module():
    spec = importlib.util.spec_from_file_location("_launcher_tests", Path(__file__).with_name("test_launcher.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    worker = _fake_worker_module().write_fake_worker(tmp_path)
    e = {"PLAYGROUND_RUNS_DIR": str(tmp_path / "runs"), "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"),
         "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md"), "PLAYGROUND_WORKER": " ".join(worker),
         "PLAYGROUND_DEBUG": "", "COLUMNS": "120",
         "PLAYGROUND_PRETRAIN_WORKER": f"{sys.executable} {Path(__file__).with_name('fake_pretrain.py')}"}
    for k, v in e.items():
        monkeypatch.setenv(k, v)
    return e


def test_reproduce_reuses_finished_runs_and_rewrites_the_table(env, tmp_path):
    out = tmp_path / "docs" / "results.md"
    args = ["reproduce", "--only", "gae-ppo,iql-awr-offline", "--seeds", "3", "--quick", "--parallel", "2",
            "--out", str(out)]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    runs = Path(env["PLAYGROUND_RUNS_DIR"])
    made = sorted(p.name for p in runs.glob("*-reproduce-*"))
    assert len(made) == 6 and "n=3" in r.stdout
    text = out.read_text()
    assert "`iql-awr-offline`" in text and "0 reused" in text and (out.parent / "results-bands.png").stat().st_size
    out.write_text(text + "\n## Notes by hand\n\nkept\n")
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in runs.glob("*-reproduce-*")) == made  # nothing ran again
    assert again.stdout.count("reused  ") == 6 and "started " not in again.stdout
    text2 = out.read_text()
    assert "6 reused" in text2 and text2.rstrip().endswith("## Notes by hand\n\nkept") and text2.count(BEGIN) == 1
    longer = CliRunner().invoke(app, [*args[:4], "4", *args[5:]], catch_exceptions=False)  # one more seed per row
    assert longer.exit_code == 0 and longer.stdout.count("started ") == 2 and longer.stdout.count("reused  ") == 6
    fresh = CliRunner().invoke(app, ["reproduce", "--only", "gae-ppo", "--seeds", "1", "--quick", "--fresh", "--out",
                                     str(out)], catch_exceptions=False)
    assert fresh.exit_code == 0 and fresh.stdout.count("started ") == 1 and "reused  " not in fresh.stdout


def test_reproduce_device_cuda_without_a_gpu_is_one_line(env):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    r = CliRunner().invoke(app, ["reproduce", "--device", "cuda", "--quick"], catch_exceptions=False)
    assert r.exit_code == 2 and "--device cuda" in r.stderr and "no CUDA device" in r.stderr
    bad = CliRunner().invoke(app, ["reproduce", "--device", "tpu"], catch_exceptions=False)
    assert bad.exit_code == 2 and "use cpu or cuda" in bad.stderr
