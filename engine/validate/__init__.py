"""The validator: known-bad combinations from the seed (KB01..KB13; KB14 measured here), config inconsistencies
(CFG01..CFG06) and the runs directory's history (HIST01), as a list of `Finding`s.

    findings = validate(cfg, metas, runs_dir=Path("runs"), expected_sr=0.991)

`metas` maps checkpoint keys (checkpoint, critic_checkpoint, ...) to their checkpoint metadata
(or None when the file does not exist yet); see `engine.config.checkpoint_refs.resolve_checkpoints`.
Errors come first. No torch is imported here.

| id     | severity | rule |
|--------|----------|------|
| KB01   | error    | start policy too strong (ckpt_101, role expert/optimal, det SR >= 0.90) |
| KB02   | error    | stochastic evaluation |
| KB03   | error    | PPO update_epochs >= 10 with target_kl <= 0.1 |
| KB04   | error    | PPO 0 < warmup_iters <= 5 with target_kl <= 0.1 |
| KB05   | error    | exp_name states mc<N> / estimator / update / regime the config does not use |
| KB06   | error    | critic is V* (critic-optimal) |
| KB07   | error    | offline MC re-rolled with another policy than the data policy |
| KB08   | warning  | IQL Q - V advantages (also SARSA's: IQL at tau 0.5) |
| KB09   | warning  | advantages regressed by a network |
| KB10   | warning  | MC AWR gamma > 0.9; GAE gamma < 0.95 without a pretrained critic |
| KB11   | warning  | online PPO with reward_scale != 1 or a critic bigger than 3x256 |
| KB12   | warning  | offline AWR (or RECAP) batch < 25,600 or update_epochs > 8 |
| KB13   | warning  | TD(n) advantages with td_n <= 5 (the seed: TD(1) rho 0.07, TD(5) 0.34, TD(20) 0.96) |
| KB14   | warning  | RECAP with recap_alpha > 0.1 (measured here: alpha 1.0 took SR 41% -> 0% in one iteration) |
| CFG01  | warning  | num_minibatches does not divide num_envs * num_steps |
| CFG02  | warning  | pretrained critic fitted with another gamma |
| CFG03  | warning  | keys changed that this update / estimator / regime does not read |
| CFG04  | error    | a policy checkpoint's action size or recorded control_mode does not fit the env's controller |
| CFG05  | warning  | online: one iteration (num_envs x num_steps) is more than twice total_timesteps |
| CFG06  | warning  | the run's estimated wall time on this machine is over 6 hours (engine.config.walltime) |
| HIST01 | warning  | earlier runs of the same kind peaked under half the expected SR |
"""
from __future__ import annotations

from pathlib import Path

from engine.config.schema import RunConfig

from . import history, rules_checkpoints, rules_naming, rules_training
from .finding import Finding

RULES = rules_checkpoints.RULES + rules_training.RULES + rules_naming.RULES
RULE_IDS = ("KB01", "KB02", "KB03", "KB04", "KB05", "KB06", "KB07", "KB08", "KB09", "KB10", "KB11", "KB12",
            "KB13", "KB14", "CFG01", "CFG02", "CFG03", "CFG04", "CFG05", "CFG06", "HIST01")
_ORDER = {rid: i for i, rid in enumerate(RULE_IDS)}


def validate(cfg: RunConfig, metas: dict[str, dict | None] | None = None, *, runs_dir: Path | None = None,
             expected_sr: float | None = None) -> list[Finding]:
    """Every finding for this resolved config, errors first (then in rule-id order).

    `expected_sr`: the seed's peak SR for this config (the preset's `expected_sr`); when None
    and `cfg.preset` names a preset, that preset's value is used. History (HIST01) is only
    looked at when `runs_dir` is given.
    """
    m = {k: (v if isinstance(v, dict) else None) for k, v in (metas or {}).items()}
    findings: list[Finding] = []
    for rule in RULES:
        findings += rule(cfg, m)
    if runs_dir is not None:
        if expected_sr is None and cfg.preset:
            from engine.config.loading import preset_metadata

            es = preset_metadata(cfg.preset).get("expected_sr")
            expected_sr = float(es) if isinstance(es, (int, float)) and not isinstance(es, bool) else None
        findings += history.hist01_far_below(cfg, runs_dir, expected_sr)
    findings.sort(key=lambda f: (f.severity != "error", _ORDER.get(f.id, len(_ORDER)), f.id))
    return findings


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


__all__ = ["Finding", "validate", "has_errors", "RULE_IDS"]
