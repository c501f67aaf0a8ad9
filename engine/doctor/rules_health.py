"""Run-doctor rules over a run's health: non-finite values (DOC10) and a stalled run (DOC11).

The stalled check reads the run's own records: the last write to metrics.jsonl / status.json
against the run's own iteration time (the launcher's live stall detection is separate)."""
from __future__ import annotations

import datetime as _dt
import statistics

from .diagnosis import Diagnosis, spans
from .view import RunView

# Keys that must be finite in every update row when present (explained_variance may be NaN by
# definition: no critic, or constant returns).
FINITE_KEYS = ("pg_loss", "v_loss", "loss", "approx_kl", "entropy", "adv_mean", "adv_std", "weight_mean",
               "weight_max", "weight_ess", "sr")
# DOC11. No new record for 10 times the run's median iteration time, and at least 5 minutes (the first
# iteration also pays the initial evaluation and, offline, the dataset; ours took up to ~3x a later one).
STALL_FACTOR = 10.0
STALL_MIN_S = 300.0


def doc10_non_finite(v: RunView) -> list[Diagnosis]:
    err = str(v.status.get("error") or "")
    hits: list[int] = []
    keys: set[str] = set()
    for r in v.rows:
        for k in FINITE_KEYS:
            if k in r and r[k] is None:  # the recorder writes NaN / inf as null
                hits.append(int(r.get("iteration", 0)))
                keys.add(k)
    if "non-finite" not in err and not hits:
        return []
    what = f"{err}" if "non-finite" in err else ""
    if hits:
        what = (what + "; " if what else "") + f"non-finite {', '.join(sorted(keys))} at iterations {spans(hits)}"
    lr = v.cfg("learning_rate", 0.0003)
    fix = {"learning_rate": round(float(lr) / 3, 8)} if isinstance(lr, (int, float)) else {}
    if v.cfg("max_grad_norm") in (None, 0, 0.0):
        fix["max_grad_norm"] = 0.5
    return [Diagnosis("DOC10", "error", "Non-finite values in training", what,
                      "not a seed issue: diverging updates (a learning rate or reward scale too large)",
                      sorted(set(hits)), fix)]


def _ts(iso: object) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(iso)).timestamp()
    except (TypeError, ValueError):
        return None


def doc11_stalled(v: RunView) -> list[Diagnosis]:
    if v.status.get("status") not in ("running", "queued"):
        return []
    last = max([t for t in (v.last_write, _ts(v.status.get("started"))) if t is not None], default=None)
    if last is None:
        return []
    times = [x for _, x in v.series("iter_s") if x > 0]
    typical = statistics.median(times) if times else None
    limit = max(STALL_MIN_S, STALL_FACTOR * typical) if typical else 2 * STALL_MIN_S
    idle = v.now - last
    if idle <= limit:
        return []
    it = v.updates[-1]["iteration"] if v.updates else 0
    per = f"{typical:.1f} s per iteration" if typical else "no iteration finished yet"
    return [Diagnosis(
        "DOC11", "warning", "The run is stalled",
        f"status {v.status.get('status')} (pid {v.status.get('pid')}) but nothing written for {idle / 60:.1f} min "
        f"after iteration {it} ({per}; limit {limit / 60:.1f} min)",
        "not a seed issue: a hung worker or a starved machine; `playground stop RUN` then `playground run --resume RUN`",
        [it], {})]


RULES = [doc10_non_finite, doc11_stalled]
