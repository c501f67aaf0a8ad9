"""docs/results.md as `playground reproduce` writes it: final SR ± s.e. beside peak SR, ordered by final SR."""
from __future__ import annotations

import math

from engine.analysis.reproduce import BEST_CONFIGURATIONS, RowResult, write_results


def run(peak, final, n=500):
    return {"run": "r", "status": "done", "peak_sr": peak, "final_sr": final, "initial_sr": 0.45, "eval_episodes": n,
            "final_sr_se": math.sqrt(final * (1 - final) / n), "env_steps": 1000, "wall_s": 10.0}


def test_results_order_by_final_sr_and_show_standard_errors(tmp_path):
    # a: higher peak, lower final; b: the other way round -> ordered b > a
    a = RowResult("A", "m", 0.99, "preset-a", [run(0.95, 0.70), run(0.93, 0.72)], 0.99)
    b = RowResult("B", "m", 0.90, "preset-b", [run(0.90, 0.86), run(0.89, 0.88)], 0.80)
    out = tmp_path / "results.md"
    write_results(out, [a, b], env="pickcube-lite", seeds=[0, 1], quick=False, commands={}, started="now", wall_s=1.0)
    text = out.read_text()
    assert "- ours: preset-b > preset-a" in text and "- seed: preset-a > preset-b" in text
    assert "71.0% ± 1.0" in text          # final SR of a: mean 0.71, s.e. std/sqrt(2) = 0.01414/1.414 = 0.01
    assert "| 0.700 ± 0.020 |" in text      # per run: binomial s.e. sqrt(.7 * .3 / 500) = 0.0205
    assert "ordering below is by final SR" in text


def test_table_rows_name_presets_at_index_3():
    """engine/cli/reproduce_cmd.py reads the preset at index 3 of every row."""
    assert [r[3] for r in BEST_CONFIGURATIONS] == ["online-mc16-awr", "onpolicy-mc16-awr", "gae-ppo", "offline-mc16-awr"]
