"""What an environment's checkpoint ladder holds, as rows a table or a picker shows:
`ladder_rows(env_id)` (or `rows_of_index(index)`) -> one dict per role with its seed-name
aliases, file, iteration, log-std, measured det / stoch SR, and for critics the policy they
were fitted on and their gamma."""
from __future__ import annotations

from typing import Any

from engine.checkpoints import ROLE_SEED_NAME, ROLES, ladder_dir, read_index


def rows_of_index(index: dict) -> list[dict[str, Any]]:
    rows = []
    roles = index.get("roles") or {}
    for role in list(ROLES) + [r for r in roles if r not in ROLES]:
        e = roles.get(role)
        if e is None:
            continue
        aliases = [a for a in (e.get("seed_alias") or ROLE_SEED_NAME.get(role), e.get("seed_name")) if a]
        rows.append({"role": role, "aliases": list(dict.fromkeys(aliases)),
                     "file": e.get("path") or (str(ladder_dir(index.get("env_id", "")) / e["file"])
                                               if e.get("file") else None),
                     "source": e.get("source"),
                     "iteration": e.get("iteration"), "logstd": e.get("logstd"), "det_sr": e.get("det_sr"),
                     "stoch_sr": e.get("stoch_sr"), "gamma": e.get("gamma"), "fitted_on": e.get("fitted_on")})
    return rows


def ladder_rows(env_id: str) -> list[dict[str, Any]]:
    """The roles env `env_id` has built ([] before its first pretraining)."""
    from engine.envs import check_env_id  # lazy: ~10-30 ms of start-up (measured) for every front

    check_env_id(env_id)
    return rows_of_index(read_index(env_id))
