"""Run-doctor rules over a run's health: non-finite values (DOC10) and a stalled run (DOC11).

DOC11 uses the one definition of "stalled" (`engine.doctor.stall`, which the launcher's live
stall detection uses too): the run's last write to its records against its own iteration time,
or the launcher's verdict when the status it was given carries one (`stall`: the TUI's followed
runs, whose watcher also sees a stopped worker process)."""
from __future__ import annotations

from .diagnosis import Diagnosis, spans
from .stall import judge_stall
from .view import RunView

# Keys that must be finite in every update row when present (explained_variance may be NaN by
# definition: no critic, or constant returns).
FINITE_KEYS = ("pg_loss", "v_loss", "loss", "approx_kl", "entropy", "adv_mean", "adv_std", "weight_mean",
               "weight_max", "weight_ess", "sr")


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


def doc11_stalled(v: RunView) -> list[Diagnosis]:
    stall = judge_stall(v.status, v.rows, v.last_write, now=v.now)
    it = v.updates[-1]["iteration"] if v.updates else 0
    if stall is not None:
        per = f"{stall.per_iteration_s:.1f} s per iteration" if stall.per_iteration_s else "no iteration timed yet"
        limit = f"limit {stall.limit_s / 60:.1f} min" if stall.limit_s is not None else "worker process stopped"
        symptom = (f"status running (pid {v.status.get('pid')}) but nothing written for {stall.idle_s / 60:.1f} min "
                   f"after iteration {it} ({per}; {limit})")
    elif v.status.get("status") == "running" and v.status.get("stall"):
        symptom = f"status running (pid {v.status.get('pid')}), after iteration {it}: {v.status['stall']}"
    else:
        return []
    return [Diagnosis(
        "DOC11", "warning", "The run is stalled", symptom,
        "not a seed issue: a hung or stopped worker, or a starved machine; `playground stop RUN` then "
        "`playground run --resume RUN`", [it], {})]


RULES = [doc10_non_finite, doc11_stalled]
