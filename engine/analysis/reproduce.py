"""`playground reproduce`: run the seed's "Best Configurations" table and write a comparison.

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
import shlex
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import psutil

from ..config.tomlio import dumps_flat
from ..figures import group_curves, panels_figure, save_figure
from ..records import git_commit, read_metrics, read_status
from ..runtime import threads_mode, usable_cores
from .stats import METRICS, block, config_key, p_improve, pct_ci, read_config, values_of_rows

# The launcher's modules are imported inside the functions that use them: engine/launcher/__init__.py
# imports this module, so importing engine.launcher.* here at the top is an import circle at run time
# (tried: `import engine.launcher` then fails with "cannot import name 'BEST_CONFIGURATIONS' from
# partially initialized module 'engine.analysis.reproduce'").

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
    import torch  # the launcher imports this module: `import torch` took 5.1 s (perf_counter) of a CLI start

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


def finished_runs(runs_dir: Path) -> dict[tuple, Path]:
    """`done` runs of earlier reproduce invocations, by (seed, resolved config but the seed)."""
    out: dict[tuple, Path] = {}
    for d in sorted(runs_dir.glob("*-reproduce-*")):
        if (read_status(d) or {}).get("status") == "done":
            conf = read_config(d)
            out.setdefault((conf.get("seed"), config_key(conf)), d)
    return out


def planned_key(cfg) -> tuple:
    """(seed, config key) of a planned run, as its config.toml will read."""
    from ..launcher.spawn import resolved_checkpoint_paths  # at run time: see the note at the top

    conf = tomllib.loads(dumps_flat(resolved_checkpoint_paths(cfg)[0]))
    return conf.get("seed"), config_key(conf)


def plan_jobs(rows: list, *, env: str, seeds: list[int], quick: bool, runs_dir: Path, device: str | None,
              reuse: bool = True):
    """Jobs of every row x seed (reused finished runs already ended) and the exact commands."""
    from ..launcher.listing import summarize_run  # at run time: see the note at the top
    from ..launcher.plan import plan_sweep

    done = finished_runs(runs_dir) if reuse else {}
    jobs, commands, reused = [], {}, 0
    for regime, method, seed_sr, preset, seed_final in rows:
        sp = plan_sweep(preset, seeds=seeds, env=env, runs_dir=runs_dir)
        over = dict(QUICK[sp.runs[0].plan.cfg.regime]) if quick else {}
        if over:
            sp = plan_sweep(preset, over, seeds=seeds, env=env, runs_dir=runs_dir)
        if sp.missing:
            raise next(p for p in sp.plans if p.missing).missing_error()
        sp.set_device(device)
        for r in sp.runs:
            cmd = (f"playground run {preset} --env {env} --seed {r.seed}" + (f" --device {device}" if device else "")
                   + "".join(f" --{k} {shlex.quote(v)}" for k, v in over.items()))
            r.plan.cfg.command = cmd
            commands.setdefault(preset, []).append(cmd)
        for job, r in zip(sp.jobs(runs_dir, name_prefix=f"reproduce-{preset}", point={"preset": preset}), sp.runs):
            prev = done.get(planned_key(r.plan.cfg))
            if prev is not None:
                job.run_dir, job.state, job.summary = prev, "ended", summarize_run(prev)
                reused += 1
            jobs.append(job)
    return jobs, commands, reused


def run_jobs(jobs: list, parallel: int, on_event: Callable[[str], None]) -> None:
    from ..launcher.sweep import Scheduler  # at run time: see the note at the top

    for j in jobs:
        if j.state == "ended":
            on_event(f"reused  {j.point['preset']} seed {j.seed}: {j.run_dir} (done)")
    sched = Scheduler(jobs, parallel=parallel)
    try:
        while not sched.finished:
            for job, what in sched.step():
                if what == "started":
                    on_event(f"started {job.point['preset']} seed {job.seed}: {job.run_dir}")
                else:
                    s = job.summary
                    on_event(f"ended   {job.point['preset']} seed {job.seed}: {s.status}, final SR "
                             f"{'-' if s.last_sr is None else f'{s.last_sr:.3f}'}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        sched.stop_all()
        raise
    finally:
        sched.close()


def reproduce(*, env: str, seeds: list[int], quick: bool, runs_dir: Path, out: Path, parallel: int = 1,
              presets: list[str] | None = None, device: str | None = None, reuse: bool = True,
              on_event: Callable[[str], None] = print) -> list[RowResult]:
    """Run every row x seed not yet done (all of them with `reuse=False`; the ladder must exist: the CLI
    builds it first), write `out` and its bands figure."""
    rows = [r for r in BEST_CONFIGURATIONS if presets is None or r[3] in presets]
    jobs, commands, reused = plan_jobs(rows, env=env, seeds=seeds, quick=quick, runs_dir=runs_dir, device=device,
                                       reuse=reuse)
    started = time.strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    run_jobs(jobs, parallel, on_event)
    results = [RowResult(regime, method, seed_sr, preset,
                         [run_summary(j.run_dir) for j in jobs if j.point["preset"] == preset and j.run_dir],
                         seed_final)
               for regime, method, seed_sr, preset, seed_final in rows]
    fig = bands_figure(results, runs_dir, out.with_name(f"{out.stem}-bands.png"))
    write_results(out, results, env=env, seeds=seeds, quick=quick, commands=commands, started=started,
                  wall_s=time.perf_counter() - t0, reused=reused, machine=machine_facts(device or "cpu", parallel),
                  figure=fig.name if fig else None)
    return results


__all__ = ["BEST_CONFIGURATIONS", "PAIRS", "DEFAULT_SEEDS", "RowResult", "reproduce", "write_results", "splice",
           "render", "run_summary", "METRICS"]
