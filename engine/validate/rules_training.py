"""Rules about how a run trains and evaluates: KB02 (stochastic eval), KB03/KB04 (PPO collapse
with a tight KL stop), KB08 (IQL's / SARSA's Q - V), KB13 (TD(n) with n <= 5), KB14 (RECAP with recap_alpha > 0.1), KB09 (regressed advantages), KB10 (gamma), KB11
(regression tricks in online PPO), KB12 (offline AWR batch), CFG01 (minibatches not dividing the
batch), CFG03 (keys with no effect for this update/estimator/regime)."""
from __future__ import annotations

from engine.config.schema import FIELDS, RunConfig

from .finding import Finding, is_none, meta_float, spec_role

TIGHT_KL = 0.1
DEFAULT_CRITIC = (3, 256)
KB12_MIN_BATCH = 25_600
KB12_MAX_EPOCHS = 8


def kb02_stochastic_eval(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.deterministic_eval:
        return []
    return [Finding("KB02", "error", "evaluation samples actions (stochastic eval)",
                    "deterministic_eval = false: the seed saw about 12 points of eval noise from action sampling "
                    "and curves that oscillate wildly. Evaluate with the policy mean.",
                    {"deterministic_eval": True})]


def kb03_high_utd_tight_kl(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.update != "ppo" or cfg.update_epochs < 10 or cfg.target_kl > TIGHT_KL:
        return []
    return [Finding("KB03", "error", "PPO with many update epochs and a tight KL stop collapses",
                    f"update_epochs {cfg.update_epochs} with target_kl {cfg.target_kl:g}: the seed's "
                    "`--update_epochs 20 --target_kl 0.1` COLLAPSES, while `--update_epochs 20 --target_kl 100.0` "
                    "works. Turn the KL stop off for high update-to-data PPO.",
                    {"target_kl": 100.0})]


def kb04_warmup_tight_kl(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.update != "ppo" or not (0 < cfg.warmup_iters <= 5) or cfg.target_kl > TIGHT_KL:
        return []
    return [Finding("KB04", "error", "PPO with a short critic warmup and a tight KL stop collapses",
                    f"warmup_iters {cfg.warmup_iters} with target_kl {cfg.target_kl:g}: the seed's "
                    "`--warmup_iters 3 --target_kl 0.1` collapsed to 7% SR. Turn the KL stop off "
                    "(or warm the critic up for longer than 5 iterations).",
                    {"target_kl": 100.0})]


def kb08_iql_q_minus_v(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.estimator == "sarsa":
        return [Finding("KB08", "warning", "the advantage is SARSA's Q(s,a) - V(s), which cannot rank actions",
                        "estimator sarsa fits Q and V by MSE regression (IQL at tau 0.5): the seed measured that "
                        "Q-network's within-state ranking at Spearman rho 0.010 against MC ground truth (top-1 12.5%, "
                        "chance), because Q's cross-state variance is ~500x its within-state variance. GAE(lambda=0.95) "
                        "bootstrapped with IQL's V ranks at rho 0.93.",
                        {"estimator": "iql-v-gae"})]
    if cfg.estimator != "iql":
        return []
    return [Finding("KB08", "warning", "the advantage is IQL's Q(s,a) - V(s), which cannot rank actions",
                    "IQL's Q-network learns V(s) well but not the ranking of actions (cross-state variance 500x the "
                    "within-state variance): Spearman rho 0.01 against MC ground truth while its V is good "
                    "(r = 0.96); larger nets (256/512/1024) do not help. GAE(lambda=0.95) bootstrapped with IQL's V "
                    "ranks at rho 0.93.",
                    {"estimator": "iql-v-gae"})]


def kb09_regressed_advantages(cfg: RunConfig, metas: dict) -> list[Finding]:
    if not cfg.regress_advantages:
        return []
    return [Finding("KB09", "warning", "advantages are regressed by a network before use",
                    "regress_advantages = true: regression destroys ranking. GAE direct: rho 0.93; NN(GAE targets): "
                    "rho 0.02; even with MC ground-truth targets 0.93 -> 0.02. Compute GAE/MC advantages directly "
                    "from trajectories.",
                    {"regress_advantages": False})]


def kb10_gamma(cfg: RunConfig, metas: dict) -> list[Finding]:
    out = []
    if cfg.estimator == "mc" and cfg.update == "awr" and cfg.gamma > 0.9:
        out.append(Finding("KB10", "warning", f"MC AWR with gamma {cfg.gamma:g} (> 0.9)",
                           f"gamma {cfg.gamma:g} on the 50-step sparse task: the seed's MC AWR reached 99.1% with "
                           "gamma 0.8, while gamma 0.99 makes MC returns high-variance. MC AWR: gamma = 0.8.",
                           {"gamma": 0.8}))
    if cfg.estimator == "gae" and cfg.gamma < 0.95 and is_none(cfg.critic_checkpoint):
        out.append(Finding("KB10", "warning",
                           f"GAE with gamma {cfg.gamma:g} (< 0.95) and a critic learned from scratch",
                           f"gamma {cfg.gamma:g} with critic_checkpoint none on the 50-step sparse task: the seed's "
                           "GAE PPO with a critic learned from scratch reached 92.1% at gamma 0.99 but 71.7% at 0.8 "
                           "(with the pretrained V^pi_expert, gamma 0.8 reached 93.2%). Use gamma 0.95..0.99, or a "
                           "pretrained critic (critic_checkpoint = critic-expert).",
                           {"gamma": 0.99}))
    return out


def kb11_online_ppo_tricks(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.regime != "online" or cfg.update != "ppo":
        return []
    tricks, fix = [], {}
    if cfg.reward_scale != 1.0:
        tricks.append(f"reward_scale {cfg.reward_scale:g}")
        fix["reward_scale"] = 1.0
    d_layers, d_width = DEFAULT_CRITIC
    if is_none(cfg.critic_checkpoint):
        layers, width = cfg.critic_layers, cfg.critic_width
        if layers * width > d_layers * d_width:
            tricks.append(f"a {layers}x{width} critic")
            fix.update({"critic_layers": d_layers, "critic_width": d_width})
    elif spec_role(cfg.critic_checkpoint) != "critic-expert":
        meta = metas.get("critic_checkpoint")
        layers, width = meta_float(meta, "critic_layers"), meta_float(meta, "critic_width")
        if layers and width and layers * width > d_layers * d_width:
            tricks.append(f"a {int(layers)}x{int(width)} pretrained critic")
            fix["critic_checkpoint"] = "critic-expert"
    if not tricks:
        return []
    return [Finding("KB11", "warning", "online PPO with offline regression tricks (" + ", ".join(tricks) + ")",
                    "The seed found these do not help online PPO: reward_scale 20 gave no gain, a 10x512 critic "
                    "gave no gain, both combined were the WORST (81.2% vs 90.7% baseline). GAE only needs V(s): "
                    "errors cancel through the telescoping sum, so SNR tricks are unnecessary. Drop them.",
                    fix)]


def kb12_offline_awr_batch(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.regime != "offline" or cfg.update not in ("awr", "recap"):
        return []
    small, many = cfg.batch_size < KB12_MIN_BATCH, cfg.update_epochs > KB12_MAX_EPOCHS
    if not (small or many):
        return []
    parts, fix = [], {}
    if small:
        parts.append(f"a batch of {cfg.batch_size:,} samples (num_envs {cfg.num_envs} x num_steps {cfg.num_steps}, "
                     f"under {KB12_MIN_BATCH:,})")
        fix.update({"num_envs": 128, "num_steps": 200, "num_minibatches": 32})
    if many:
        parts.append(f"{cfg.update_epochs} update_epochs (more than {KB12_MAX_EPOCHS})")
    if many or cfg.update_epochs > 4:
        fix["update_epochs"] = 4
    return [Finding("KB12", "warning", "offline AWR with a small batch or many epochs",
                    "This offline AWR run uses " + " and ".join(parts) + ": the seed saw small batches with many "
                    "epochs overfit and oscillate heavily. Use a large batch (25,600+) with few epochs: "
                    "--num_envs 128 --num_steps 200 --num_minibatches 32 --update_epochs 4.",
                    fix)]


KB13_MIN_N = 5
# the seed's ranking table (README "Action Ranking Quality"): within-state Spearman rho vs MC ground truth
TD_RHO = {1: 0.071, 5: 0.343, 20: 0.960}


def kb13_short_td(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.estimator != "td" or cfg.td_n > KB13_MIN_N:
        return []
    return [Finding("KB13", "warning", f"TD({cfg.td_n}) advantages rank actions close to chance",
                    f"td_n {cfg.td_n}: the seed measured n-step TD's within-state ranking against MC ground truth at "
                    f"Spearman rho {TD_RHO[1]} for TD(1) (top-1 22.7%), {TD_RHO[5]} for TD(5) and {TD_RHO[20]} for "
                    "TD(20): a few steps of sparse reward carry almost no action signal, the bootstrapped V decides. "
                    "Use 20 steps (or GAE).",
                    {"td_n": 20})]


KB14_MAX_ALPHA = 0.1


def kb14_recap_strong_push(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.update != "recap" or cfg.recap_alpha <= KB14_MAX_ALPHA:
        return []
    return [Finding("KB14", "warning", f"RECAP pushes negative actions away with recap_alpha {cfg.recap_alpha:g}",
                    f"recap_alpha {cfg.recap_alpha:g}: RECAP's push-away term (reverse behaviour cloning on negative "
                    "advantages) is unbounded below. Measured here, not by the seed (pickcube-lite, online MC16 "
                    "RECAP from the 41% start policy, one seed): at the seed's default alpha 1.0 the SR fell to 0% "
                    "in one iteration, with 4 epochs x 32 minibatches (push-away loss -1.7e3) as with 200 x 5 "
                    "(-7.5e4); at alpha 0.1 it rose to 48% and 69% in two iterations. Values between are untested.",
                    {"recap_alpha": KB14_MAX_ALPHA})]


def _nearest_divisor(n: int, target: int) -> int:
    divs: set[int] = set()
    i = 1
    while i * i <= n:
        if n % i == 0:
            divs.update((i, n // i))
        i += 1
    return min(divs, key=lambda d: (abs(d - target), -d))


def cfg01_minibatches(cfg: RunConfig, metas: dict) -> list[Finding]:
    batch, mb = cfg.batch_size, cfg.num_minibatches
    if batch % mb == 0:
        return []
    best = _nearest_divisor(batch, mb)
    return [Finding("CFG01", "warning", "num_minibatches does not divide the batch",
                    f"the batch is num_envs {cfg.num_envs} x num_steps {cfg.num_steps} = {batch:,} samples and "
                    f"num_minibatches is {mb}: " + ("more minibatches than samples" if mb > batch else
                                                    f"{batch % mb} samples are left out of (or unevenly spread over) "
                                                    "every epoch") +
                    f". {best} minibatches of {batch // best:,} divide it exactly.",
                    {"num_minibatches": best})]


# keys that only one update rule / estimator family / regime reads
_ONLY = (
    (("target_kl", "clip_coef", "ent_coef", "norm_adv", "warmup_iters"), lambda c: c.update == "ppo",
     "PPO-only", "update is awr"),
    (("awr_beta", "awr_max_weight", "awr_normalize_adv"), lambda c: c.update in ("awr", "recap"),
     "AWR/RECAP-only", "update is ppo"),
    (("awr_rescale_minibatch",), lambda c: c.update == "awr", "AWR-only", "the update is not awr (recap always "
                                                                          "rescales each side)"),
    (("recap_alpha",), lambda c: c.update == "recap", "RECAP-only", "the update is not recap"),
    (("td_n",), lambda c: c.estimator == "td", "TD-only", "the estimator is not td"),
    (("sarsa_target",), lambda c: c.estimator == "sarsa", "SARSA-only", "the estimator is not sarsa"),
    (("fit_steps",), lambda c: c.estimator in ("sarsa", "rank-q", "two-stage"), "fitted-estimator-only",
     "the estimator is not sarsa / rank-q / two-stage"),
    (("rank_neighbours",), lambda c: c.estimator == "rank-q", "rank-q-only", "the estimator is not rank-q"),
    (("mc_samples",), lambda c: c.estimator == "mc", "MC-only", "the estimator is not mc"),
    (("iql_expectile_tau",), lambda c: c.estimator in ("iql", "iql-v-gae"), "IQL-only",
     "the estimator is not iql / iql-v-gae"),
    (("total_timesteps",), lambda c: c.regime == "online", "online-only", "the regime is offline"),
    (("num_iterations",), lambda c: c.regime == "offline", "offline-only", "the regime is online"),
)


def cfg03_no_effect(cfg: RunConfig, metas: dict) -> list[Finding]:
    idle: list[str] = []
    fix: dict = {}
    reasons: list[str] = []
    for keys, used, label, because in _ONLY:
        if used(cfg):
            continue
        changed = [k for k in keys if getattr(cfg, k) != FIELDS[k].default]
        if changed:
            idle += changed
            reasons.append(f"{', '.join(changed)} ({label}; {because})")
            fix.update({k: FIELDS[k].default for k in changed})
    if not idle:
        return []
    return [Finding("CFG03", "warning", "keys set that this config does not use: " + ", ".join(idle),
                    "These keys are changed from their defaults but have no effect here: " + "; ".join(reasons) +
                    ". Probably the update, estimator or regime is not the one you meant; otherwise drop them.",
                    fix)]


RULES = [kb02_stochastic_eval, kb03_high_utd_tight_kl, kb04_warmup_tight_kl, kb08_iql_q_minus_v,
         kb09_regressed_advantages, kb10_gamma, kb11_online_ppo_tricks, kb12_offline_awr_batch,
         kb13_short_td, kb14_recap_strong_push, cfg01_minibatches, cfg03_no_effect]
