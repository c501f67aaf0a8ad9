"""`playground reproduce`'s table: the seed's "Best Configurations" rows and the comparison written
from their runs. Running the rows is the launcher's job (engine.launcher.reproduce_job.reproduce: it
plans and schedules the runs, then calls `write_results` and `bands_figure` here); this module
only reads run directories and writes the file, so it imports nothing of the launcher.

Each row of the seed's table (plus the oracle MC1 AWR and IQL AWR offline rows) is a preset;
every row runs for `seeds` seeds (8 by default) through the same launcher as `playground run`
(one worker process per run, at most `parallel` at once; with `device = "cuda"` several seeds
share one GPU). `docs/results.md` gets, per row and beside the seed's numbers, the statistics of
engine.analysis.stats (n, IQM with its 95% stratified bootstrap CI, mean) of final SR
(success_once), peak SR and SR at end (success_at_end); P(oracle > on-policy) and P(on-policy >
GAE PPO) with CIs; a figure with the CI bands (`<out stem>-bands.png` beside the file); the
machine, threads, device, torch build and wall time; the git commit and the exact command of
every run.

Re-runnable: a run of the table that is already `done` in the runs directory with the same
resolved config and seed is reused, not run again, so the table can be re-written from existing
runs (`reuse=False`, the CLI's `--fresh`, runs everything again: a run directory does not record
the code it ran, so runs left by older code are reused too unless asked not to be). The generated part of the file sits between `BEGIN` and `END` markers; everything outside
them (hand-written notes, other sections) is kept. A file without markers keeps its whole text
below the new block. `--quick` shortens every run (fewer iterations) for a smoke pass.
"""
from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from ..figures import group_curves, panels_figure, save_figure
from ..records import git_commit, read_metrics, read_status
from ..runtime import threads_mode, usable_cores
from .stats import METRICS, block, p_improve, pct_ci, read_config, values_of_rows

# (regime, method as the seed names it, the seed's peak SR, our preset, the seed's final SR): the peak and
# final of the logged run each preset reproduces (experiments/log.md of zyc00/OfflineRLPlayGround; see
# docs/seed-fidelity.md and the presets' comments). The offline row's 88.2% re-rolled with the optimal policy,
# which known issue 7 (KB07) forbids: the preset reproduces the same log entry's on-policy run.
BEST_CONFIGURATIONS = [
    ("Online (oracle)", "MC16 AWR", 0.991, "online-mc16-awr", 0.991),
    ("Online (no oracle)", "MC16 on-policy AWR", 0.967, "onpolicy-mc16-awr", 0.950),
    ("GAE PPO", "GAE + pretrained critic", 0.932, "gae-ppo", 0.932),
    ("Offline", "MC16 AWR, on-policy re-roll (the table's 88.2%: optimal re-roll)", 0.833, "offline-mc16-awr",
     0.750),
    ("Online (oracle)", "MC1 AWR", 0.783, "online-mc1-awr", 0.703),
    ("Offline", "IQL AWR", 0.916, "iql-awr-offline", 0.672),
]
# (x, y, what it says): P(final SR of a seed of x > one of y), with its CI
PAIRS = [("online-mc16-awr", "onpolicy-mc16-awr", "P(oracle > on-policy)"),
         ("onpolicy-mc16-awr", "gae-ppo", "P(on-policy > GAE PPO)")]
QUICK = {"online": {"total_timesteps": "15000"}, "offline": {"num_iterations": "10", "num_envs": "64",
                                                             "num_steps": "100"}}
DEFAULT_SEEDS = 8
BEGIN = "<!-- reproduce:begin (written by `playground reproduce`; edits here are replaced) -->"
END = "<!-- reproduce:end (text below is kept when the table is written again) -->"


@dataclass
class RowResult:
    regime: str
    method: str
    seed_sr: float
    preset: str
    runs: list[dict]
    seed_final: float = float("nan")

    def stat(self, key: str) -> tuple[float | None, float | None]:
        """Mean and sample standard deviation over seeds of a run-summary key (None when none has it)."""
        vals = [r[key] for r in self.runs if r.get(key) is not None]
        if not vals:
            return None, None
        m = sum(vals) / len(vals)
        s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        return m, s

    @property
    def stats(self) -> dict:
        """The statistics block (engine.analysis.stats.block) of final SR, peak SR and SR at end."""
        return block(self.runs)

    def values(self, key: str = "final_sr") -> list[float]:
        return [r[key] for r in self.runs if r.get(key) is not None]


def run_summary(run_dir: Path) -> dict:
    rows = read_metrics(run_dir)
    st = read_status(run_dir) or {}
    srs = [r["sr"] for r in rows if isinstance(r.get("sr"), (int, float))]
    last = rows[-1] if rows else {}
    v = values_of_rows(rows)
    n_eval = last.get("eval_episodes")
    final = v["final_sr"]
    return {"run": run_dir.name, "status": st.get("status"), **v, "initial_sr": srs[0] if srs else None,
            "eval_episodes": n_eval, "seed": read_config(run_dir).get("seed"),
            "final_sr_se": (math.sqrt(final * (1 - final) / n_eval) if final is not None and n_eval else None),
            "env_steps": last.get("env_steps"), "wall_s": last.get("wall_s"),
            "started": st.get("started"), "ended": st.get("ended")}


def machine_facts(device: str, parallel: int) -> dict:
    """CPU model and cores, torch build, device, and the threads each worker may use."""
    import torch  # 3.3 s to import here; only `reproduce` needs it, not every `playground` command

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    cap = max(1, usable_cores() // max(1, parallel))
    return {"cpu": cpu, "cores": psutil.cpu_count(logical=True), "physical_cores": psutil.cpu_count(logical=False),
            "torch": torch.__version__, "torch_build": f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu",
            "device": device + (f" ({gpu})" if gpu else ""), "parallel": parallel,
            "threads": f"PLAYGROUND_THREADS={threads_mode()}, at most {cap} per worker ({parallel} at once)"}


def span_s(results: list[RowResult]) -> float | None:
    """Wall time from the first run's start to the last run's end (as their status.json say)."""
    t0 = [r["started"] for row in results for r in row.runs if r.get("started")]
    t1 = [r["ended"] for row in results for r in row.runs if r.get("ended")]
    if not t0 or not t1:
        return None
    return (max(map(datetime.fromisoformat, t1)) - min(map(datetime.fromisoformat, t0))).total_seconds()


def _header(results: list[RowResult], *, env: str, seeds: list[int], quick: bool, started: str, wall_s: float,
            reused: int, machine: dict, figure: str | None) -> list[str]:
    span = span_s(results)
    n_runs = sum(len(r.runs) for r in results)
    return [
        "# Reproducing the seed's Best Configurations", "",
        f"Written by `playground reproduce --env {env} --seeds {len(seeds)}{' --quick' if quick else ''}` on "
        f"{started} at git commit `{git_commit()}`; {len(seeds)} seeds ({', '.join(map(str, seeds))}) per row, "
        f"{n_runs} runs ({reused} reused from earlier invocations).", "",
        f"- Machine: {machine['cpu']}, {machine['cores']} logical cores ({machine['physical_cores']} physical); "
        f"torch {machine['torch']} ({machine['torch_build']} build); device {machine['device']}; "
        f"{machine['threads']}.",
        f"- Wall time: {'-' if span is None else f'{span / 60:.1f} min'} from the first run's start to the last "
        f"run's end; this invocation {wall_s / 60:.1f} min.", "",
        "Statistics over seeds (Agarwal et al. 2021, as rliable reports them): **IQM** (interquartile mean: "
        "the mean of the middle half of the seeds) with its **95% stratified bootstrap CI** in brackets "
        "(scipy.stats.bootstrap, 10,000 resamples, percentile intervals, generator seed 0), the mean, and n "
        "(seeds with an evaluation). Final SR is success_once (deterministic eval) after the last iteration; "
        "SR at end is success_at_end of that evaluation; peak SR is the best of a run's evaluations, optimistic "
        "by several points, shown because the seed's table reports peaks. Env steps include MC re-rollouts. "
        f"Our numbers are on `{env}`; the seed's are on ManiSkill PickCube-v1 with its own checkpoints (one "
        "seed each), so compare orderings, not decimals.", ""] + ([f"![SR vs env steps by row: IQM over seeds "
                                                                  f"with 95% CI bands]({figure})", ""] if figure else [])


def _table(results: list[RowResult]) -> list[str]:
    lines = ["| Regime | Method | n | Seed peak SR | Seed final SR | Final SR: IQM [95% CI] | Final SR: mean "
             "| Peak SR: IQM [95% CI] | SR at end: IQM [95% CI] | Start SR | Env steps | Wall time / run |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        b = r.stats
        mean = (b["final_sr"] or {}).get("mean")
        es, ws, st = r.stat("env_steps")[0], r.stat("wall_s")[0], r.stat("initial_sr")[0]
        lines.append(f"| {r.regime} | {r.method} (`{r.preset}`) | {b['n']} | {100 * r.seed_sr:.1f}% | "
                     f"{100 * r.seed_final:.1f}% | **{pct_ci(b['final_sr'])}** | "
                     f"{'-' if mean is None else f'{100 * mean:.1f}%'} | {pct_ci(b['peak_sr'])} | "
                     f"{pct_ci(b['sr_at_end'])} | {'-' if st is None else f'{100 * st:.1f}%'} | "
                     f"{'-' if es is None else f'{es:,.0f}'} | {'-' if ws is None else f'{ws:.0f} s'} |")
    return lines


def pair_results(results: list[RowResult]) -> list[dict]:
    """The PAIRS that both have runs, then each step of our ordering by final-SR IQM: P(X > Y) and CI."""
    by = {r.preset: r for r in results if r.values()}
    out = [{"x": x, "y": y, "what": what, **(p_improve(by[x].values(), by[y].values()) or {})}
           for x, y, what in PAIRS if x in by and y in by]
    order = sorted(by.values(), key=lambda r: -(r.stats["final_sr"] or {}).get("iqm", -1))
    for a, b in zip(order, order[1:]):
        out.append({"x": a.preset, "y": b.preset, "what": f"P({a.preset} > {b.preset})", "ordering": True,
                    **(p_improve(a.values(), b.values()) or {})})
    return out


def _ordering(results: list[RowResult], pairs: list[dict]) -> list[str]:
    seed_order = [r.preset for r in sorted(results, key=lambda r: -r.seed_final)]
    ours = [r for r in results if r.stats["final_sr"]]
    our_order = [r.preset for r in sorted(ours, key=lambda r: -r.stats["final_sr"]["iqm"])]
    lines = ["", "## Ordering (by final SR) and how sure it is", "", f"- seed: {' > '.join(seed_order)}",
             f"- ours (IQM): {' > '.join(our_order)}",
             "- " + ("the same ordering." if seed_order == our_order else "the orderings differ."), "",
             "P(X > Y): the probability that a seed of X ends above a seed of Y (final SR; ties count half), with "
             "its 95% stratified bootstrap CI (each row's seeds resampled on their own). A CI that holds 50% "
             "means the two rows are not told apart by these seeds.", ""]
    for p in pairs:
        if p.get("p") is not None:
            lines.append(f"- {p['what']}{' (step of our ordering)' if p.get('ordering') else ''}: "
                         f"{pct_ci(p, 'p')}, n = {p['n_x']} and {p['n_y']}")
    return lines


def _runs_table(results: list[RowResult], commands: dict[str, list[str]]) -> list[str]:
    lines = ["", "## Runs", "", "| Preset | Seed | Run | Status | Start SR | Final SR ± s.e. | Peak SR | SR at end "
             "| Eval episodes | Env steps | Wall s |", "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for run in r.runs:
            f = lambda k: "-" if run.get(k) is None else f"{run[k]:.3f}"  # noqa: E731
            se = "" if run.get("final_sr_se") is None else f" ± {run['final_sr_se']:.3f}"
            lines.append(f"| {r.preset} | {run.get('seed', '-')} | `{run['run']}` | {run['status']} | "
                         f"{f('initial_sr')} | {f('final_sr')}{se} | {f('peak_sr')} | {f('sr_at_end')} | "
                         f"{run.get('eval_episodes') or '-'} | {run.get('env_steps') or '-'} | "
                         f"{'-' if run.get('wall_s') is None else round(run['wall_s'])} |")
    lines += ["", "## Exact commands", ""]
    for cmds in commands.values():
        lines += [f"- `{c}`" for c in cmds]
    return lines


def render(results: list[RowResult], **kw) -> str:
    """The generated block of docs/results.md (between the markers)."""
    commands = kw.pop("commands")
    pairs = pair_results(results)
    return "\n".join(_header(results, **kw) + _table(results) + _ordering(results, pairs)
                     + _runs_table(results, commands))


def splice(old: str | None, block_text: str) -> str:
    """`old` with the text between the markers replaced (everything outside kept); a file without
    markers keeps all of its text below the new block."""
    new = f"{BEGIN}\n{block_text.rstrip()}\n{END}\n"
    if not old:
        return new
    if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
        rest = old[old.index(END) + len(END):].lstrip("\n")
        return old[:old.index(BEGIN)] + new + ("\n" + rest if rest.strip() else "")
    return new + "\n" + old


def write_results(path: Path, results: list[RowResult], *, env: str, seeds: list[int], quick: bool,
                  commands: dict[str, list[str]], started: str, wall_s: float, reused: int = 0,
                  machine: dict | None = None, figure: str | None = None) -> None:
    text = render(results, env=env, seeds=seeds, quick=quick, commands=commands, started=started, wall_s=wall_s,
                  reused=reused, machine=machine or machine_facts("cpu", 1), figure=figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(splice(old, text))
    os.replace(tmp, path)  # never half-written


def bands_figure(results: list[RowResult], runs_dir: Path, out: Path) -> Path | None:
    """The rows' SR curves, one IQM line with its 95% CI band per row: online rows against env steps
    (a log axis: GAE PPO's 50k and MC16's 20M+ in one panel), offline rows against iterations (an
    offline run's env steps stop growing once its dataset is collected)."""
    def dirs(regime: str) -> list[Path]:
        return [runs_dir / run["run"] for r in results for run in r.runs
                if read_config(runs_dir / run["run"]).get("regime") == regime]

    panels = [("online", group_curves(dirs("online")), "environment steps (count, log scale; MC re-rollouts "
               "included)", "log"),
              ("offline", group_curves(dirs("offline"), x="iteration"), "iteration (count)", "linear")]
    if not any(c.env_steps for _, curves, _, _ in panels for c in curves):
        return None
    fig = panels_figure(panels, title="Best Configurations: success rate, IQM over seeds with 95% CI bands")
    return save_figure(fig, out, dpi=150)


__all__ = ["BEST_CONFIGURATIONS", "PAIRS", "DEFAULT_SEEDS", "QUICK", "RowResult", "bands_figure", "machine_facts",
           "write_results", "splice", "render", "run_summary", "METRICS"]
