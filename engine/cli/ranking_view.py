"""The rich table of an advantage-ranking result (`engine.analysis.ranking.run_ranking`), as
`playground analyze ranking` prints it."""
from __future__ import annotations

from typing import Any

from engine.analysis.ranking import ESTIMATORS


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.0f}"
        return f"{x:.{digits}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _short(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def ranking_table(result: dict):
    """A rich Table of the result: one row per estimator, the ground truth first."""
    from rich import box
    from rich.table import Table

    cfg = result["config"]
    gt = result["ground_truth"]
    pol = result["policy"].get("spec")
    crit = result["critic"].get("spec")
    if result["critic"].get("fitted"):
        crit = f"fitted on the policy's MC returns (R^2 {_fmt(result['critic'].get('fit_r2'))})"
    title = (f"Action ranking on {result['env_id']}: policy {pol}, {cfg['num_states']} states x "
             f"{cfg['num_actions']} actions, gamma {cfg['gamma']}")
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("estimator", no_wrap=True)
    for head in ("rho", "rho\ntop", "V r", "Var x/w\n(denoised)", "pool\nA r", "env\nsteps", "time", "seed\nrho"):
        t.add_column(head, justify="right", no_wrap=True)
    ratio = _fmt(gt.get("var_ratio"), 1)
    if gt.get("noise_std") is not None:
        ratio += f" ({_fmt(gt.get('var_ratio_denoised'), 1) if gt.get('var_ratio_denoised') is not None else 'n/a'})"
    t.add_row(gt["label"], _fmt(gt.get("split_half_spearman")), "-", "ref", ratio, "ref",
              _short(gt.get("env_steps")), f"{gt.get('wall_s', 0):.0f}s", "-")
    seed_says = []
    for name in ESTIMATORS:
        row = result["estimators"].get(name)
        if row is None:
            continue
        seed = row.get("seed") or {}
        if seed:
            seed_says.append(f"{row['label']} " + ", ".join(
                f"{ {'spearman': 'rho', 'v_pearson': 'V r', 'var_ratio': 'x/w'}[k]} {v:g}" for k, v in seed.items()))
        t.add_row(row["label"], _fmt(row["spearman"]), _fmt(row.get("spearman_top_half")),
                  _fmt(row["v_pearson"]), _fmt(row["var_ratio"], 1), _fmt(row["pooled_pearson"]),
                  _short(row["env_steps"]), f"{row['wall_s']:.0f}s", _fmt(seed.get("spearman")))
    ranked, const = gt.get("states_ranked"), gt.get("states_constant")
    half = cfg["gt_rollouts"] // 2 if cfg["gt_rollouts"] >= 2 else 1
    cap = [f"rho: within-state Spearman of A(s, .) vs true Q(s, .), mean over the {ranked} states whose truth "
           f"varies over the candidates ({const} constant ones left out); rho top: over the "
           f"{gt.get('states_top_half')} of them where the true Q varies most.",
           f"Truth row: rho between its two halves of {half} rollouts"
           + (f"; full-truth reliability (Spearman-Brown) {_fmt(gt.get('reliability'))} ~ the best rho any "
              "estimator can show against it." if gt.get("reliability") is not None else "."),
           "V r: Pearson over states of V(s) vs true V(s). Var x/w: Var_s(mean_a Q) / mean_s(Var_a Q) "
           f"(in brackets with the truth's MC noise, std {_fmt(gt.get('noise_std'), 4)}, taken out). "
           "pool A r: Pearson of A vs true A over all pairs.",
           f"GAE critic: {crit}.",
           "Seed (known issues 8, 9): " + "; ".join(seed_says) + "." if seed_says else ""]
    if result.get("warnings"):
        cap += [f"warning: {w}" for w in result["warnings"]]
    if result.get("json_path"):
        cap.append(f"JSON: {result['json_path']}")
    t.caption = "\n".join(cap)
    t.caption_justify = "left"
    return t


def print_ranking(result: dict, console=None) -> None:
    from rich.console import Console

    (console or Console()).print(ranking_table(result))
