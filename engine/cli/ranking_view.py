"""The rich table of an advantage-ranking result (`engine.analysis.ranking.run_ranking`), as
`playground analyze ranking` prints it."""
from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from engine.launcher import ESTIMATORS  # loads the ranking code (torch): this view is imported on use


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
    (console or Console()).print(ranking_table(result))


# --------------------------------------------------------------------------- JSON summary, seed protocol

_SINGLE_NAMES = {"gae": "gae", "mc1": "mc1", "mc16": "mc16", "iql": "iql", "nn_mc16": "nn-mc16",
                 "iql_v_gae": "iql-v-gae"}


def single_rollout_summary(result: dict) -> dict:
    """The single-rollout result in the `--json` shape shared with the seed protocol: protocol,
    states, K, M (rollouts per action for the estimators: 1), rho and top1 per estimator (top1 from
    the kept per-pair data; None without it)."""
    cfg, data = result["config"], result.get("data") or {}
    q = data.get("q_gt")
    rho, top1 = {}, {}
    for name, row in result["estimators"].items():
        key = _SINGLE_NAMES.get(name, name)
        rho[key] = row.get("spearman")
        a = data.get(f"a_{name}")
        top1[key] = _top1(a, q) if a is not None and q is not None else None
    return {"protocol": "single-rollout", "env_id": result.get("env_id"), "states": cfg["num_states"],
            "K": cfg["num_actions"], "M": 1, "gt_rollouts": cfg["gt_rollouts"], "rho": rho, "top1": top1,
            "json_path": result.get("json_path")}


def _top1(a: list, q: list) -> float | None:
    hits = [max(range(len(ai)), key=ai.__getitem__) == max(range(len(qi)), key=qi.__getitem__)
            for ai, qi in zip(a, q) if None not in ai and None not in qi and len(set(qi)) > 1]
    return sum(hits) / len(hits) if hits else None


_SEED_ORDER = ("mc", "gae", "td1", "td5", "td20", "td50", "iql", "iql-0.7", "iql-ours", "iql-v-gae", "iql-v-gae-0.7",
               "nn-gae", "nn-mc", "mc-indep", "gae-indep", "td20-indep")


def seed_ranking_table(result: dict):
    """A rich Table of a seed-protocol result (engine.analysis.ranking_seed): rho and top-1 per
    estimator beside the seed's README numbers, then the M-scaling and width tables when present."""
    names = [n for n in _SEED_ORDER if n in result["rho"]]
    names += [n for n in result["rho"] if n not in names and "@" not in n]
    seed = result.get("seed", {})
    t = Table(title=(f"Action ranking, seed protocol, on {result['env_id']}: policy {result['policy'].get('spec')}, "
                     f"{result['states']} states ({result.get('states_ranked')} ranked) x K={result['K']}, "
                     f"M={result['M']}"), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for head in ("estimator", "rho", "top-1", "seed rho", "seed top-1"):
        t.add_column(head, justify="left" if head == "estimator" else "right", no_wrap=True)
    se = result.get("rho_se") or {}
    for n in names:
        rho = _fmt(result["rho"].get(n), 3) + (f" ± {se[n]:.3f}" if se.get(n) is not None else "")
        t.add_row(n, rho, _fmt(result["top1"].get(n), 3),
                  _fmt(seed.get("rho", {}).get(n), 3), _fmt(seed.get("top1", {}).get(n), 3))
    d = result.get("diagnostics") or {}
    t.caption = "\n".join(x for x in (
        "rho (± its standard error over states): within-state Spearman vs MC over the first M rollouts (the "
        "truth); -indep: rollouts M..2M-1.",
        f"re-rolls all equal: {_fmt(d.get('pairs_all_rollouts_equal'), 3)} of pairs; true Q within/cross-state "
        f"variance {_fmt(d.get('truth_q_within_var'), 5)} / {_fmt(d.get('truth_q_cross_var'), 4)} "
        f"(seed 0.0001 / 0.265); V r: GAE critic {_fmt((d.get('v_pearson') or {}).get('gae'), 3)}, "
        f"IQL {_fmt((d.get('v_pearson') or {}).get('iql'), 3)} (seed IQL 0.963).",
        f"{_short(result.get('env_steps'))} env steps, {result.get('wall_s')}s wall.",
        f"JSON: {result['json_path']}" if result.get("json_path") else "") if x)
    t.caption_justify = "left"
    return t


def _side_table(title: str, rows: dict, seed_rows: dict, first: str):
    cols = list(next(iter(rows.values())).keys())
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column(first, no_wrap=True)
    for c in cols:
        t.add_column(f"{c}\n(seed)", justify="right", no_wrap=True)
    for key, row in rows.items():
        s = seed_rows.get(key, {})
        t.add_row(key, *(f"{_fmt(row.get(c), 3)} ({_fmt(s.get(c), 3)})" for c in cols))
    return t


def print_seed_ranking(result: dict, console=None) -> None:
    console = console or Console()
    console.print(seed_ranking_table(result))
    if result.get("m_scaling"):
        console.print(_side_table("rho against a 16-rollout MC truth, estimators on the first M rollouts",
                                  result["m_scaling"], result.get("seed_m_scaling", {}), "M"))
    if result.get("network_sizes"):
        console.print(_side_table("rho by hidden width (V, IQL, regression net)", result["network_sizes"],
                                  result.get("seed_network_sizes", {}), "width"))
