"""Run-doctor rules over the update's own metrics: AWR weights (DOC01 near uniform, DOC02 collapsed
on a few samples), PPO's KL (DOC03 approx_kl / clipfrac blowing up, DOC04 the KL stop throttling
every update after its first epoch) and RECAP's push-away term diverging (DOC12). Each threshold is written next to its rule with its source."""
from __future__ import annotations

from .diagnosis import Diagnosis, spans
from .view import RunView

# DOC01. Kish ESS / batch = 1 / (1 + cv^2) of the weights. The seed (engine/algos/awr.py docstring):
# raw advantages (std ~0.08) with beta 0.5 give weights 1 +- 0.2, "close to self-cloning": cv 0.2 is
# an ESS of 0.96 of the batch. Measured on our AWR presets (beta 0.5 / 1.0, standardised): see
# docs/doctor.md (at most 0.37).
UNIFORM_ESS = 0.95
# DOC02. A few samples carry the update: ESS under 5% of the batch, or a fifth of the batch at the
# weight clip (the clip then decides the weights, not the advantages). Measured on our AWR presets:
# ESS at least 0.17, at most 5.9% of the weights at the clip (docs/doctor.md).
COLLAPSED_ESS = 0.05
COLLAPSED_CLIPPED = 0.20
# DOC03. Our high-UTD PPO presets with the KL stop off (20 and 100 epochs) measured at most 0.035
# approx_kl and 0.32 clipfrac (docs/doctor.md); PPO at learning rate 0.01 measured 100-900 and 0.8-0.93.
# Blowing up: KL above 1.0 (about 30 times the presets' largest), or clipfrac above 0.8 (most samples
# outside the trust region), in 2 or more iterations.
KL_BLOWUP = 1.0
CLIPFRAC_BLOWUP = 0.8
# DOC04. Seed issue 3 (KB03): `--update_epochs 20 --target_kl 0.1` collapses: the KL stop ends the
# update after its first epoch. Fires when the KL stop ends the update within its first tenth of the
# epochs (the first epoch; the first 2 of 20) in at least 80% of the policy updates (3 or more).
THROTTLED_SHARE = 0.8
# DOC12. RECAP's push-away term (-alpha * exp(|A|/beta) * log pi of negative-advantage actions) has no
# lower bound: pushing log pi of an action down pays for ever. Measured on `online-mc16-recap`, 8 seeds
# (docs/results.md): healthy iterations keep |neg_loss| <= 0.43 beside |pos_loss| 0.3-1.0; the two
# seeds that fell to SR 0.00 reached neg_loss -11.8 / -585 / -682 in their last iterations (alpha 1.0:
# -7.5e4 in one iteration, KB14). Fires at |neg_loss| > 5 or > 5x |pos_loss| (and > 1) in one iteration.
PUSH_AWAY_ABS = 5.0
PUSH_AWAY_RATIO = 5.0


def _majority(v: RunView, hits: list[int], n: int, share: float = 0.5) -> bool:
    return n >= 2 and len(hits) >= 2 and len(hits) >= share * n


def doc01_awr_uniform(v: RunView) -> list[Diagnosis]:
    ess = v.series("weight_ess_frac")
    hits = [it for it, x in ess if x >= UNIFORM_ESS]
    if v.update != "awr" or not _majority(v, hits, len(ess)):
        return []
    beta = float(v.cfg("awr_beta", 0.5))
    normalized = bool(v.cfg("awr_normalize_adv", True))
    fix = {"awr_normalize_adv": True} if not normalized else {"awr_beta": 0.5 if beta > 0.5 else round(beta / 4, 4)}
    low = min(x for it, x in ess if it in hits)
    return [Diagnosis(
        "DOC01", "warning", "AWR weights near uniform: the update clones the batch",
        f"the AWR weights' effective sample size is {low:.1%} of the batch or more (>= {UNIFORM_ESS:.0%}) in "
        f"{len(hits)} of {len(ess)} updates (iterations {spans(hits)}), with awr_beta {beta:g} and advantages "
        f"{'standardised' if normalized else 'NOT standardised'}",
        "seed: AWR weights from raw advantages (std ~0.08, beta 0.5) are 1 +- 0.2, close to self-cloning; the seed "
        "standardises the advantages and uses beta 0.5-1.0", hits, fix)]


def doc02_awr_collapsed(v: RunView) -> list[Diagnosis]:
    if v.update != "awr":
        return []
    ess = dict(v.series("weight_ess_frac"))
    clipped = dict(v.series("frac_clipped"))
    its = sorted(set(ess) | set(clipped))
    hits = [it for it in its if ess.get(it, 1.0) < COLLAPSED_ESS or clipped.get(it, 0.0) >= COLLAPSED_CLIPPED]
    if not _majority(v, hits, len(its)):
        return []
    beta = float(v.cfg("awr_beta", 0.5))
    lo_ess = min((ess[it] for it in hits if it in ess), default=float("nan"))
    hi_clip = max((clipped[it] for it in hits if it in clipped), default=float("nan"))
    return [Diagnosis(
        "DOC02", "warning", "AWR weights collapsed onto the clip or a few samples",
        f"in {len(hits)} of {len(its)} updates (iterations {spans(hits)}) the weights' effective sample size fell "
        f"to {lo_ess:.1%} of the batch (< {COLLAPSED_ESS:.0%}) or up to {hi_clip:.1%} of them sat at the clip "
        f"awr_max_weight {v.cfg('awr_max_weight', 20.0):g} (>= {COLLAPSED_CLIPPED:.0%}), with awr_beta {beta:g}",
        "AWR (Peng et al. 2019) with too small a temperature: a few samples (or the clip) decide the update and "
        "its variance grows; the seed's AWR runs use beta 0.5-1.0 on standardised advantages",
        hits, {"awr_beta": 0.5 if beta < 0.5 else 1.0, "awr_normalize_adv": True})]


def doc03_ppo_blowup(v: RunView) -> list[Diagnosis]:
    if v.update != "ppo":
        return []
    kl = v.series("approx_kl")
    cf = v.series("clipfrac")
    hits = sorted({it for it, x in kl if x > KL_BLOWUP} | {it for it, x in cf if x > CLIPFRAC_BLOWUP})
    if len(hits) < 2:
        return []
    max_kl = max((x for _, x in kl), default=float("nan"))
    max_cf = max((x for _, x in cf), default=float("nan"))
    epochs = int(v.cfg("update_epochs", 10))
    return [Diagnosis(
        "DOC03", "warning", "PPO updates leave the trust region (approx_kl / clipfrac blowing up)",
        f"approx_kl up to {max_kl:.3g} (> {KL_BLOWUP:g}) or clipfrac up to {max_cf:.2f} (> {CLIPFRAC_BLOWUP:g}) in "
        f"iterations {spans(hits)}, with {epochs} update epochs and learning_rate {v.cfg('learning_rate')}",
        "seed issue 3: high update-to-data PPO; the seed's working high-UTD runs keep 20 epochs at lr 3e-4",
        hits, {"update_epochs": min(epochs, 20), "learning_rate": 0.0003})]


def doc04_kl_throttle(v: RunView) -> list[Diagnosis]:
    target = v.cfg("target_kl")
    if v.update != "ppo" or not isinstance(target, (int, float)) or target >= 100:
        return []
    warm = int(v.cfg("warmup_iters", 0) or 0)
    rows = [r for r in v.updates if r["iteration"] > warm and isinstance(r.get("epochs_run"), int)]
    epochs = int(v.cfg("update_epochs", 1))
    cut = max(1, epochs // 10)
    hits = [r["iteration"] for r in rows if r.get("stopped_early") and r["epochs_run"] <= cut and epochs > 1]
    if len(hits) < 3 or len(hits) < THROTTLED_SHARE * len(rows):
        return []
    runs = sorted({r["epochs_run"] for r in rows if r["iteration"] in hits})
    after = f"{runs[0]}" if runs[0] == runs[-1] else f"{runs[0]}-{runs[-1]}"
    return [Diagnosis(
        "DOC04", "warning", "The KL stop ends every PPO update in its first epochs",
        f"target_kl {target:g} stopped {len(hits)} of {len(rows)} policy updates after "
        f"{after} of {epochs} epochs "
        f"(iterations {spans(hits)}): the update-to-data ratio you asked for never happens",
        "seed issue 3 / KB03: `--update_epochs 20 --target_kl 0.1` collapses; high-UTD PPO needs the KL stop off",
        hits, {"target_kl": 100.0})]


def doc12_push_away_diverging(v: RunView) -> list[Diagnosis]:
    if v.update != "recap":
        return []
    pos = dict(v.series("pos_loss"))
    hits = [it for it, x in v.series("neg_loss")
            if abs(x) > PUSH_AWAY_ABS or (abs(x) > 1.0 and abs(x) > PUSH_AWAY_RATIO * abs(pos.get(it, 0.0)))]
    if not hits:
        return []
    alpha = float(v.cfg("recap_alpha", 1.0))
    worst = min((x for it, x in v.series("neg_loss") if it in hits), key=lambda x: -abs(x))
    return [Diagnosis(
        "DOC12", "warning", "RECAP's push-away term is diverging",
        f"neg_loss reached {worst:.3g} (|neg_loss| > {PUSH_AWAY_ABS:g}, or > {PUSH_AWAY_RATIO:g}x the AWR term) in "
        f"iterations {spans(hits)}, with recap_alpha {alpha:g}: the update pushes the log-probability of "
        f"negative-advantage actions down without bound, and the policy leaves the data",
        "KB14: RECAP at the seed's alpha 1.0 collapsed in one iteration; online-mc16-recap (alpha 0.1) "
        "diverged late in 2 of 8 seeds (docs/results.md)",
        hits, {"recap_alpha": round(alpha / 10, 4)})]


RULES = [doc01_awr_uniform, doc02_awr_collapsed, doc03_ppo_blowup, doc04_kl_throttle, doc12_push_away_diverging]
