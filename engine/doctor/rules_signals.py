"""Run-doctor rules over the learning signals: advantages biased (DOC05) and the value fit failing
(DOC06). Thresholds are written next to each rule with their source."""
from __future__ import annotations

from .diagnosis import Diagnosis, longest_run, spans
from .view import RunView

# DOC05. Seed issue 7 (KB07): re-rolling MC returns with the wrong policy gave advantages of mean
# -0.08 with only 22.6% positive. Fires on 3 or more consecutive iterations with adv_pos_frac under
# 0.25 AND a mean below -0.25 of the advantages' std (or above 0.85 with a mean above +0.25 std).
# The fraction alone is not enough: on-policy MC advantages on the sparse task are often exactly 0
# (measured 0.25-0.31 positive with a mean of +-0.003, std ~0.1), and GAE's run 0.31-0.69 (docs/doctor.md).
# With IQL's V (estimators `iql`, `iql-v-gae`) advantages are negative by construction (V is the
# tau = 0.7 expectile, above the mean: iql-awr-offline measured 27.3% positive, mean -0.56 std;
# iql-v-gae-awr-offline 26%): there the finding is `info`.
ADV_POS_LOW = 0.25
ADV_POS_HIGH = 0.85
ADV_BIAS_STDS = 0.25
ADV_RUN = 3
# DOC06. A value function that explains less than nothing (explained variance < 0) for 3 or more
# consecutive iterations after the first 2 (a critic learned from scratch starts there), or a value
# loss that rises in 4 consecutive iterations to more than twice where it began. Our presets measured
# EV >= 0.05 from iteration 3 on (docs/doctor.md).
EV_SKIP = 2
EV_RUN = 3
VLOSS_RISES = 4
VLOSS_FACTOR = 2.0


def doc05_adv_bias(v: RunView) -> list[Diagnosis]:
    pos = dict(v.series("adv_pos_frac"))
    mean = dict(v.series("adv_mean"))
    std = dict(v.series("adv_std"))

    def bias(it: int) -> float:  # the mean in units of the std (the mean's sign when no std is logged)
        m = mean.get(it, 0.0)
        return m / std[it] if std.get(it) else (1.0 if m > 0 else -1.0 if m < 0 else 0.0)
    low = longest_run([it for it, p in pos.items() if p < ADV_POS_LOW and bias(it) < -ADV_BIAS_STDS])
    high = longest_run([it for it, p in pos.items() if p > ADV_POS_HIGH and bias(it) > ADV_BIAS_STDS])
    hits = low if len(low) >= len(high) else high
    if len(hits) < ADV_RUN:
        return []
    fracs = [pos[it] for it in hits]
    means = [mean[it] for it in hits if it in mean]
    fix: dict = {}
    if v.cfg("estimator") == "mc" and v.cfg("rollout_policy") not in (None, "current"):
        fix = ({"rollout_policy": "data"} if v.cfg("regime") == "offline" else {"rollout_policy": "current"})
    elif v.cfg("estimator") == "gae" and str(v.cfg("critic_checkpoint", "none")).lower() == "none":
        fix = {"critic_checkpoint": "critic-expert"}
    side = "negative" if hits is low else "positive"
    share = f"{min(fracs):.1%}" if min(fracs) == max(fracs) else f"{min(fracs):.1%}-{max(fracs):.1%}"
    iql = v.cfg("estimator") in ("iql", "iql-v-gae")
    known = ("IQL's V is the tau expectile (above the mean), so advantages against it are negative for most "
             "actions by construction; with Q - V its Q also cannot rank actions (KB08, Spearman rho 0.01)") if iql else (
        "seed issue 7 / KB07: MC returns re-rolled with another policy than the data's gave mean -0.08 and only "
        "22.6% positive advantages (83.9% vs 89.1% SR on-policy)")
    return [Diagnosis(
        "DOC05", "info" if iql else "warning",
        f"Advantages biased {side}: the baseline does not match the policy's returns",
        f"{'only ' if side == 'negative' else ''}{share} of the advantages are positive with a mean of "
        f"{min(means, default=float('nan')):+.3f} to {max(means, default=float('nan')):+.3f} (beyond "
        f"{ADV_BIAS_STDS:g} of their std) in {len(hits)} consecutive iterations ({spans(hits)}); "
        "advantages of the policy's own returns average about 0",
        known, hits, {"estimator": "iql-v-gae"} if v.cfg("estimator") == "iql" else fix)]


def doc06_value_fit(v: RunView) -> list[Diagnosis]:
    out: list[Diagnosis] = []
    ev = [(it, x) for it, x in v.series("explained_variance") if it > EV_SKIP]
    neg = longest_run([it for it, x in ev if x < 0])
    fix = {"critic_checkpoint": "critic-expert"} if str(v.cfg("critic_checkpoint", "none")).lower() == "none" else {}
    if len(neg) >= EV_RUN:
        vals = [x for it, x in ev if it in neg]
        out.append(Diagnosis(
            "DOC06", "warning", "The value fit is failing: explained variance below zero",
            f"explained variance {min(vals):.2f} to {max(vals):.2f} in {len(neg)} consecutive iterations "
            f"({spans(neg)}): the critic predicts the returns worse than their mean",
            "seed issue 10: GAE PPO with a critic learned from scratch (gamma 0.8: 71.7% SR); with the pretrained "
            "V^pi_expert it reached 93.2%", neg, fix or {"learning_rate": 0.0003}))
    vl = v.series("v_loss")
    best: list[int] = []
    for i in range(1, len(vl)):
        j = i
        while j < len(vl) and vl[j][1] > vl[j - 1][1]:
            j += 1
        if j - i >= VLOSS_RISES and vl[j - 1][1] > VLOSS_FACTOR * vl[i - 1][1] > 0 and j - i + 1 > len(best):
            best = [it for it, _ in vl[i - 1:j]]
    if best and not out:
        first, last = dict(vl)[best[0]], dict(vl)[best[-1]]
        out.append(Diagnosis(
            "DOC06", "warning", "The value fit is failing: value loss rising",
            f"v_loss rose in {len(best) - 1} consecutive iterations ({spans(best)}) from {first:.3g} to {last:.3g}",
            "seed issue 10: a critic that does not fit the returns biases GAE", best, fix or {"learning_rate": 0.0003}))
    return out


RULES = [doc05_adv_bias, doc06_value_fit]
