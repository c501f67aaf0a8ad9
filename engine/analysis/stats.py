"""Statistics over seeds, at the standard of Agarwal et al. 2021 ("Deep RL at the Edge of the
Statistical Precipice", the rliable library): interquartile mean (IQM) with 95% stratified
bootstrap confidence intervals, and the probability of improvement P(X > Y) with its CI.

UI-free; used by `sweep`, `reproduce`, `compare --group` and the TUI's grouped overlay.

- `describe(values)`: `{"n", "mean", "iqm", "median", "min", "max", "ci95": [low, high]}`;
  `ci95` is the 95% percentile-bootstrap CI of the IQM over seeds (None with fewer than two).
- `p_improve(x, y)`: `{"p", "ci95"}`: P(a run of X scores above a run of Y), ties counting
  half (the Mann-Whitney U statistic over n_x * n_y); X and Y resampled each on its own
  (the stratified bootstrap).
- `run_values(run_dir)` / `values_of_rows(rows)`: a run's `final_sr` (success_once of the last
  evaluation), `peak_sr` (engine.sr.peak_sr) and `sr_at_end` (of the last evaluation).
- `block(values_per_run)`: the statistics block of one group: `n` and a `describe` per metric.
- `group_runs(run_dirs)`: runs grouped by resolved config (every key but the seed, the
  exp_name and the command), with a label naming the preset and the keys that differ.
- `band(curves)`: per evaluation of a group, mean env steps, IQM of SR and its 95% CI.
- `grouped_series(runs)`: for (run_dir, config, rows) triples, one SR series per configuration:
  a group's IQM with `low`/`high` (its band), or a single run's own points (what figures and
  the TUI's grouped overlay draw).

The resampling is scipy.stats.bootstrap (10,000 resamples, percentile intervals as rliable's
defaults, a fixed generator seed so the numbers are reproducible). rliable itself was measured
and not used: rliable 1.2.0 installs beside our pins but fails at import (its `arch` 7.2.0
dependency raises a TypeError under pandas 3.1).

numpy and scipy.stats are imported where a statistic is computed, not at module top: importing
scipy.stats took 4.5 of the 5.9 s `import engine.cli.app` took (measured with -X importtime on the
loaded 2-core machine), and every `playground` command imports this module through the launcher
(numpy alone: 0.27 s, perf_counter, also not loaded by a CLI start otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from engine.records import read_metrics
from engine.run_files import read_config  # noqa: F401 (a run's config.toml; re-exported)
from engine.sr import is_iteration_row, peak_sr, sr_series, sr_value

METRICS = ("final_sr", "peak_sr", "sr_at_end")
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
RNG_SEED = 0                       # the bootstrap's generator: the same runs give the same CIs
NOT_CONFIG = ("seed", "exp_name", "command")   # what may differ between the runs of one group
CI_METHOD = "percentile"


def iqm(x: Any, axis: int = -1) -> Any:
    """Interquartile mean: the mean of the middle 50% (scipy.stats.trim_mean, 25% cut each side)."""
    from scipy import stats as st

    return st.trim_mean(x, 0.25, axis=axis)


def _ci(data: tuple, statistic) -> list[float]:
    import numpy as np
    from scipy import stats as st

    res = st.bootstrap(data, statistic, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, method=CI_METHOD,
                       rng=np.random.default_rng(RNG_SEED), vectorized=True, axis=-1)
    ci = res.confidence_interval
    return [float(ci.low), float(ci.high)]


def describe(values: Sequence[float]) -> dict[str, Any] | None:
    """n, mean, IQM, median, min, max and the IQM's 95% bootstrap CI of `values` (None when empty)."""
    import numpy as np

    x = np.asarray([float(v) for v in values if v is not None], dtype=float)
    if x.size == 0:
        return None
    point = float(x[0]) if np.ptp(x) == 0 else float(iqm(x))
    if x.size < 2:
        ci = None                                  # one seed: no spread to resample
    elif np.ptp(x) == 0:
        ci = [point, point]                        # every seed the same: a degenerate interval
    else:
        ci = _ci((x,), iqm)
    return {"n": int(x.size), "mean": float(x.mean()), "iqm": point, "median": float(np.median(x)),
            "min": float(x.min()), "max": float(x.max()), "ci95": ci}


def _p(x: Any, y: Any, axis: int = -1) -> Any:
    import numpy as np
    from scipy import stats as st

    nx, ny = np.shape(x)[axis], np.shape(y)[axis]
    return st.mannwhitneyu(x, y, axis=axis, method="asymptotic").statistic / (nx * ny)


def p_improve(x: Sequence[float], y: Sequence[float]) -> dict[str, Any] | None:
    """P(X > Y) over runs (ties count half) and its 95% stratified bootstrap CI; None when a side is empty."""
    import numpy as np

    a = np.asarray([float(v) for v in x if v is not None], dtype=float)
    b = np.asarray([float(v) for v in y if v is not None], dtype=float)
    if a.size == 0 or b.size == 0:
        return None
    p = float(_p(a, b))
    ci = None if min(a.size, b.size) < 2 else [p, p] if np.ptp(np.concatenate([a, b])) == 0 else _ci((a, b), _p)
    return {"p": p, "ci95": ci, "n_x": int(a.size), "n_y": int(b.size)}


def values_of_rows(rows: Sequence[dict]) -> dict[str, float | None]:
    """final_sr, peak_sr and sr_at_end of one run's metrics rows (None where it has no evaluation)."""
    evals = [r for r in rows if is_iteration_row(r) and sr_value(r) is not None]
    last = evals[-1] if evals else {}
    end = last.get("sr_at_end")
    return {"final_sr": sr_value(last) if evals else None, "peak_sr": peak_sr(rows),
            "sr_at_end": float(end) if isinstance(end, (int, float)) and not isinstance(end, bool) else None}


def run_values(run_dir: str | Path) -> dict[str, float | None]:
    return values_of_rows(read_metrics(Path(run_dir)))


def block(values_per_run: Sequence[dict]) -> dict[str, Any]:
    """The statistics block of one group of runs: `n` (runs with an evaluation) and per metric a `describe`."""
    out: dict[str, Any] = {"n": sum(1 for v in values_per_run if v.get("final_sr") is not None)}
    for m in METRICS:
        out[m] = describe([v.get(m) for v in values_per_run])
    return out


def pct_ci(d: dict | None, key: str = "iqm") -> str:
    """'93.1% [90.2, 95.0]' for a describe()/p_improve() dict ('-' for None): for tables."""
    if not d or d.get(key) is None:
        return "-"
    ci = d.get("ci95")
    return f"{100 * d[key]:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


# --- grouping by configuration ---------------------------------------------------------------

@dataclass
class Group:
    key: tuple
    config: dict
    run_dirs: list[Path] = field(default_factory=list)
    label: str = ""

    @property
    def preset(self) -> str:
        return str(self.config.get("preset") or "") or "(no preset)"


def config_key(conf: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in conf.items() if k not in NOT_CONFIG))


def group_runs(run_dirs: Sequence[str | Path], configs: Sequence[dict] | None = None) -> list[Group]:
    """Runs grouped by resolved config (in the order first seen), each labelled by its preset and the
    keys in which it differs from the other groups of the same preset (a preset names the rest)."""
    confs = list(configs) if configs is not None else [read_config(d) for d in run_dirs]
    groups: dict[tuple, Group] = {}
    for d, c in zip(run_dirs, confs):
        k = config_key(c)
        groups.setdefault(k, Group(k, {x: y for x, y in c.items() if x not in NOT_CONFIG})).run_dirs.append(Path(d))
    out = list(groups.values())
    for g in out:
        same = [h for h in out if h.preset == g.preset]
        keys = sorted({k for h in same for k in h.config} - {"preset"})
        differ = [k for k in keys if len({_shown(h.config.get(k), k) for h in same}) > 1]
        g.label = " ".join([g.preset, *(f"{k}={_shown(g.config.get(k, '-'), k)}" for k in differ)])
    return out


def _shown(value: Any, key: str) -> str:
    """A config value as a legend shows it: a checkpoint by its file name, not its folder."""
    return Path(str(value)).name if key.endswith("checkpoint") else str(value)


def band(series: Sequence[Sequence[dict]]) -> dict[str, list]:
    """Per evaluation that every run of a group has (by iteration): mean env steps, IQM of SR, 95% CI.

    `series`: per run, its evaluation rows (`iteration`, `env_steps`, `sr`)."""
    import numpy as np

    per_run = [{r["iteration"]: r for r in rows if is_iteration_row(r) and sr_value(r) is not None} for rows in series]
    common = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    xs, mid, lo, hi = [], [], [], []
    for it in common:
        vals = [sr_value(p[it]) for p in per_run]
        d = describe(vals)
        xs.append(float(np.mean([float(p[it].get("env_steps") or 0) for p in per_run])))
        mid.append(d["iqm"])
        ci = d["ci95"] or [d["iqm"], d["iqm"]]
        lo.append(ci[0])
        hi.append(ci[1])
    return {"iterations": common, "env_steps": xs, "iqm": mid, "low": lo, "high": hi}


def grouped_series(runs: Sequence[tuple[str | Path, dict, Sequence[dict]]]) -> list[dict[str, Any]]:
    """Per configuration: `label`, `preset`, `n`, `runs`, `env_steps`, `iterations`, `sr` (a group's IQM per
    evaluation, or a single run's SR), `low`/`high` (the band; None for a single run)."""
    rows_of = {Path(d): rows for d, _, rows in runs}
    out = []
    for g in group_runs([d for d, _, _ in runs], [c for _, c, _ in runs]):
        base = {"label": g.label, "preset": g.config.get("preset") or None, "n": len(g.run_dirs),
                "runs": [d.name for d in g.run_dirs]}
        if len(g.run_dirs) == 1:
            rows = rows_of[g.run_dirs[0]]
            xs, ys = sr_series(rows)
            its = [r.get("iteration", k) for k, r in enumerate(r for r in rows if sr_value(r) is not None
                                                                and isinstance(r.get("env_steps"), (int, float)))]
            out.append({**base, "env_steps": list(xs), "iterations": its, "sr": list(ys), "low": None, "high": None})
        else:
            b = band([rows_of[d] for d in g.run_dirs])
            out.append({**base, "env_steps": b["env_steps"], "iterations": b["iterations"], "sr": b["iqm"],
                        "low": b["low"], "high": b["high"]})
    return out
