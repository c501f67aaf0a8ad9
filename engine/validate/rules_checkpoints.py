"""Rules about the checkpoints a run starts from: KB01 (start policy too strong), KB06 (V* as
critic), KB07 (offline MC re-rolled with another policy than the data's), CFG02 (critic fitted
with another gamma), CFG04 (a policy's action size or recorded controller does not match the
env's control_mode). They read the config AND the checkpoints' metadata (`metas`)."""
from __future__ import annotations

from pathlib import Path

from engine.config.schema import PANDA_ACTION_DIMS, RunConfig, expected_action_dim

from .finding import Finding, is_none, meta_float, meta_role, pct, spec_role

KB01_THRESHOLD = 0.90
STRONG_ROLES = ("expert", "optimal")


def kb01_start_too_strong(cfg: RunConfig, metas: dict) -> list[Finding]:
    spec = cfg.checkpoint
    if is_none(spec):
        return []
    meta = metas.get("checkpoint")
    name_role, m_role = spec_role(spec), meta_role(meta)
    reasons: list[str] = []
    p = Path(spec.strip())
    if spec.strip() == "ckpt_101" or p.name == "ckpt_101.pt" or p.stem == "ckpt_101":
        reasons.append("it is the seed's ckpt_101 (the expert)")
    elif name_role in STRONG_ROLES:
        reasons.append(f"'{spec}' is the {name_role} policy")
    if m_role in STRONG_ROLES and m_role != name_role:
        reasons.append(f"its metadata says role '{m_role}'")
    det = meta_float(meta, "det_sr")
    if det is not None and det >= KB01_THRESHOLD:
        stoch = meta_float(meta, "stoch_sr")
        reasons.append(f"its measured deterministic SR is {pct(det)} (>= {pct(KB01_THRESHOLD)})"
                       + (f", stochastic {pct(stoch)}" if stoch is not None else ""))
    if not reasons:
        return []
    already_start = name_role == "start" or (name_role is None and m_role == "start")
    fix = {} if already_start else {"checkpoint": "start"}
    why = ("; ".join(reasons) + ". The seed's ckpt_101 had det SR ~99%, stochastic ~62.7%: finetuning gains "
           "then come from removing action noise, not from learning, and hide the differences between methods. "
           "Start from the weak checkpoint (ckpt_76_logstd-1.5, det SR 43.8%) or the env's 'start' role")
    if already_start:
        why += ("; this env's 'start' checkpoint itself is too strong: rebuild the ladder "
                "(`playground pretrain`) or pick a weaker one from `playground checkpoints`")
    return [Finding("KB01", "error", "the finetuning start policy is too strong", why + ".", fix)]


def kb06_critic_is_vstar(cfg: RunConfig, metas: dict) -> list[Finding]:
    spec = cfg.critic_checkpoint
    if is_none(spec):
        return []
    if spec_role(spec) != "critic-optimal" and meta_role(metas.get("critic_checkpoint")) != "critic-optimal":
        return []
    return [Finding(
        "KB06", "error", "the finetuning critic is V* (fitted on the optimal policy's states)",
        f"critic_checkpoint '{spec}' is V*: it was trained on pi*'s states and does not generalise to the start "
        "policy's states. The seed measured 83.3% with V* vs 93.2% with V^pi_expert. Use the expert's value "
        "function (role critic-expert, the seed's pretrained_critic_sparse.pt).",
        {"critic_checkpoint": "critic-expert"})]


def _identity(spec: str, meta: dict | None) -> tuple[str, str]:
    role = spec_role(spec) or meta_role(meta)
    if role:
        return ("role", role)
    try:
        return ("path", str(Path(spec.strip()).expanduser().resolve()))
    except OSError:
        return ("path", spec.strip())


def kb07_offline_reroll_policy(cfg: RunConfig, metas: dict) -> list[Finding]:
    if cfg.regime != "offline" or cfg.estimator != "mc":
        return []
    if cfg.rollout_policy == "data":
        return []
    if cfg.rollout_policy == "optimal":
        if _identity(cfg.optimal_checkpoint, metas.get("optimal_checkpoint")) == \
                _identity(cfg.data_checkpoint, metas.get("data_checkpoint")):
            return []
        what = (f"re-rolls MC returns with optimal_checkpoint '{cfg.optimal_checkpoint}' while the data came from "
                f"data_checkpoint '{cfg.data_checkpoint}'")
    else:  # current
        what = (f"re-rolls MC returns with the policy being trained (rollout_policy current), which drifts away "
                f"from the one that collected the data ('{cfg.data_checkpoint}')")
    return [Finding(
        "KB07", "error", "offline MC re-rolls with another policy than the one that collected the data",
        f"This offline {cfg.update.upper()} run {what}. The seed measured a strong negative advantage bias "
        "(mean -0.08, only 22.6% positive advantages): 83.9% with the optimal policy (ckpt_301) vs 89.1% when "
        "re-rolling with the data policy (ckpt_101). Re-roll with the policy that collected the data.",
        {"rollout_policy": "data"})]


def cfg02_critic_gamma(cfg: RunConfig, metas: dict) -> list[Finding]:
    if is_none(cfg.critic_checkpoint):
        return []
    g = meta_float(metas.get("critic_checkpoint"), "gamma")
    if g is None or abs(g - cfg.gamma) <= 1e-9:
        return []
    return [Finding(
        "CFG02", "warning", "the pretrained critic was fitted with another gamma than this run's",
        f"critic_checkpoint '{cfg.critic_checkpoint}' estimates returns discounted with gamma {g:g}, this run "
        f"discounts with gamma {cfg.gamma:g}: its values mean something else (a different horizon and scale), "
        "so bootstrapping from it biases the advantages. Run with the critic's gamma, or fit a critic with this "
        "gamma (`playground pretrain`).",
        {"gamma": g})]


POLICY_KEYS = ("checkpoint", "optimal_checkpoint", "data_checkpoint")


def cfg04_action_size(cfg: RunConfig, metas: dict) -> list[Finding]:
    mode = cfg.effective_control_mode
    want = expected_action_dim(cfg.env, cfg.control_mode)
    out: list[Finding] = []
    if cfg.env == "pickcube-lite" and want is None:
        out.append(Finding("CFG04", "error", "pickcube-lite has one controller",
                           f"control_mode {mode} is a ManiSkill controller; pickcube-lite only has its pd_ee_delta_pos "
                           "look-alike (4 actions). Use control_mode auto, or a maniskill: env.",
                           {"control_mode": "auto"}))
    for key in POLICY_KEYS:
        meta = metas.get(key)
        if not isinstance(meta, dict) or meta.get("kind", "policy") != "policy":
            continue
        got, rec = meta.get("act_dim"), meta.get("control_mode")
        problems = []
        if want is not None and isinstance(got, int) and got != want:
            problems.append(f"outputs {got}-D actions while {cfg.env} with control_mode {mode} takes {want}")
        if isinstance(rec, str) and rec != mode:
            problems.append(f"was trained with control_mode {rec}, this run uses {mode}")
        if not problems:
            continue
        fits = [m for m, d in PANDA_ACTION_DIMS.items() if d == got] if cfg.env.startswith("maniskill:") else []
        fix = {"control_mode": rec if isinstance(rec, str) else fits[0]} if (rec or fits) else {}
        out.append(Finding(
            "CFG04", "error", "a policy checkpoint does not fit the env's controller",
            f"{key} '{getattr(cfg, key)}' " + " and ".join(problems) + ". The seed ran PickCube-v1 with "
            "pd_joint_delta_pos (8 actions; control_mode auto picks it for maniskill: envs). Set control_mode to "
            "the checkpoint's controller, or use a checkpoint trained with this one.", fix))
    return out


RULES = [kb01_start_too_strong, kb06_critic_is_vstar, kb07_offline_reroll_policy, cfg02_critic_gamma,
         cfg04_action_size]
