"""KB05: an `exp_name` that says something the config does not do (the seed's `mc5_awr` that
actually used 16 samples, `mc1_qv_par` that used 5). Names are split into whole tokens
(`mc16` in `online-mc16-awr`, never `mc16` inside `mc160`)."""
from __future__ import annotations

import re

from engine.config.loading import derive_exp_name
from engine.config.schema import RunConfig

from .finding import Finding

_MC = re.compile(r"^mc(\d+)$")
_TD = re.compile(r"^td(\d+)$")


def tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def kb05_mislabeled_name(cfg: RunConfig, metas: dict) -> list[Finding]:
    name = (cfg.exp_name or "").strip()
    if not name:
        return []
    wrong: list[str] = []
    for tok in dict.fromkeys(tokens(name)):   # unique, in order
        m = _MC.match(tok)
        if m or tok == "mc":
            if cfg.estimator != "mc":
                wrong.append(f"'{tok}' names MC but the estimator is {cfg.estimator}")
            elif m and int(m.group(1)) != cfg.mc_samples:
                wrong.append(f"'{tok}' says {int(m.group(1))} MC samples but mc_samples = {cfg.mc_samples}")
        elif (t := _TD.match(tok)) or tok in ("td", "sarsa"):
            est = "td" if tok.startswith("td") else tok
            if cfg.estimator != est:
                wrong.append(f"'{tok}' names {est.upper()} but the estimator is {cfg.estimator}")
            elif t and int(t.group(1)) != cfg.td_n:
                wrong.append(f"'{tok}' says {int(t.group(1))} TD steps but td_n = {cfg.td_n}")
        elif tok == "gae" and cfg.estimator not in ("gae", "iql-v-gae"):
            wrong.append(f"'gae' names GAE but the estimator is {cfg.estimator}")
        elif tok == "iql" and cfg.estimator not in ("iql", "iql-v-gae"):
            wrong.append(f"'iql' names IQL but the estimator is {cfg.estimator}")
        elif tok == "recap" and cfg.update != "recap":
            wrong.append(f"'recap' names RECAP but the update is {cfg.update}")
        elif tok in ("ppo", "awr") and tok != cfg.update and not (tok == "awr" and cfg.update == "recap"):
            wrong.append(f"'{tok}' names {tok.upper()} but the update is {cfg.update}")
        elif tok in ("online", "offline") and tok != cfg.regime:
            wrong.append(f"'{tok}' names the {tok} regime but the regime is {cfg.regime}")
    if not wrong:
        return []
    derived = derive_exp_name(cfg)
    return [Finding("KB05", "error", f"exp_name '{name}' does not match the config",
                    "; ".join(wrong) + ". The seed lost experiments to this: runs named mc5_awr actually used 16 "
                    f"samples, mc1_qv_par used 5. Derive the name from the config ('{derived}') or correct it.",
                    {"exp_name": derived})]


RULES = [kb05_mislabeled_name]
