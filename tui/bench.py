"""`python -m tui.bench`: how much the launcher costs while it follows live runs.

A writer process plays N live runs (default 8): each appends a metrics line every 0.5 s (and
a line to its engine.log). The launcher follows them on the monitor screen, headless
(`App.run_test`) in this process; in a second phase a key is pressed every 0.5 s as well
(selection up / down and mark / unmark, each one redrawing the curve). Two phases of `--seconds` each; printed:

- the launcher process's CPU while it only follows, in % of one core (process time / wall
  time; the writer is another process), target < 5 %;
- the time from a key press to its effect on the screen's state (the new selection's curve
  drawn, the mark shown), mean / median / max in ms, target < 100 ms; and the CPU of that
  second phase (following plus two key presses a second).

    python -m tui.bench [--runs 8] [--seconds 20] [--interval 0.5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from engine.runlock import try_lock
    dirs = [Path(p) for p in sys.argv[2:]]
    locks = [try_lock(d) for d in dirs]  # a live worker holds its run's lock
    interval = float(sys.argv[1])
    it = {d: 50 for d in dirs}
    t0 = time.time()
    while True:
        for i, d in enumerate(dirs):
            it[d] += 1
            n = it[d]
            sr = min(1.0, 0.01 * n + 0.02 * i)
            row = {"iteration": n, "env_steps": 5000 * n, "wall_s": round(time.time() - t0, 3), "sr": sr,
                   "sr_at_end": sr / 2, "adv_mean": 0.01, "adv_std": 0.1, "pg_loss": -0.01, "v_loss": 0.02,
                   "entropy": 3.6, "approx_kl": 0.001, "clipfrac": 0.05, "update_s": 0.3, "iter_s": 0.5}
            with open(d / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\\n")
            with open(d / "engine.log", "a") as f:
                f.write(f"INFO iteration {n}: SR {sr:.3f}\\n")
        time.sleep(interval)
""")


def make_runs(root: Path, n: int) -> list[Path]:
    from engine.launcher import RunConfig, prepare_run

    dirs = []
    for i in range(n):
        cfg = RunConfig(checkpoint="none", exp_name=f"bench-{i}", preset="gae-ppo", num_envs=100, num_steps=50,
                        total_timesteps=5000 * 10_000)
        d = prepare_run(cfg, [], runs_dir=root, name=f"bench-{i}")
        with open(d / "metrics.jsonl", "w") as f:
            for it in range(51):
                f.write(json.dumps({"iteration": it, "env_steps": 5000 * it, "wall_s": 0.5 * it,
                                    "sr": min(1.0, 0.01 * it + 0.02 * i), "sr_at_end": 0.0}) + "\n")
        dirs.append(d)
    return dirs


def press(app, key: str) -> None:
    """Deliver a key as the terminal driver does (Pilot.press would add its own idle waits)."""
    from textual import events

    app._driver.send_message(events.Key(key, None))


async def measure(root: Path, n_runs: int, seconds: float, interval: float) -> dict:
    from engine.launcher import now_iso, write_status
    from tui.app import PlaygroundApp
    from tui.widgets.sr_plot import SRPlot

    dirs = make_runs(root, n_runs)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(interval), *map(str, dirs)])
    try:
        time.sleep(1.1)  # `started` has whole seconds: it must not precede the writer's start
        for d in dirs:  # live runs: their worker is the writer process
            write_status(d, "running", pid=writer.pid, started=now_iso())
        app = PlaygroundApp(root)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f3")
            while len(app.runs) < n_runs or app.monitor is None or app.monitor.table.row_count < n_runs:
                await pilot.pause(0.1)
            await pilot.pause(2.0)  # history loaded and drawn
            mon = app.monitor
            plot = mon.query_one(SRPlot)
            rows_before = sum(len(v.rows) for v in app.runs.values())
            # phase 1: following only
            wall0, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.sleep(seconds)
            follow_wall, follow_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            # phase 2: following while a key is pressed every `interval`
            latencies: list[float] = []
            wall0, cpu0 = time.perf_counter(), time.process_time()
            keys = ["up", "m", "down", "m"]
            k = 0
            while time.perf_counter() - wall0 < seconds:
                key = keys[k % len(keys)]
                k += 1
                before_sel, before_shown = mon.selected, plot._shown
                before_mark = mon.table._shown.get(mon.selected, {}).get("mark")
                t0 = time.perf_counter()
                press(app, key)
                if key == "m":  # the mark shown in the table
                    done = lambda: mon.table._shown.get(before_sel, {}).get("mark") != before_mark  # noqa: E731
                else:  # the newly selected run's curve drawn
                    done = lambda: mon.selected != before_sel and plot._shown != before_shown  # noqa: E731
                while not done():
                    if time.perf_counter() - t0 > 5:
                        raise RuntimeError(f"key {key!r} had no effect within 5 s")
                    await asyncio.sleep(0.001)
                latencies.append(1000 * (time.perf_counter() - t0))
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t0)))
            keys_wall, keys_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            rows_after = sum(len(v.rows) for v in app.runs.values())
            states = sorted({v.state for v in app.runs.values()})
            if states != ["running"]:
                errors = {str(v.status.get("error"))[:200] for v in app.runs.values()}
                raise RuntimeError(f"the runs should all be running, they are {states}: {errors}")
    finally:
        writer.terminate()
        writer.wait()
    return {"runs": n_runs, "seconds": follow_wall, "cpu_pct": 100 * follow_cpu / follow_wall,
            "cpu_keys_pct": 100 * keys_cpu / keys_wall, "rows_followed": rows_after - rows_before,
            "keys": len(latencies), "key_ms_mean": statistics.mean(latencies),
            "key_ms_median": statistics.median(latencies), "key_ms_max": max(latencies)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tui.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between metrics lines of each run")
    args = ap.parse_args(argv)
    os.environ.setdefault("PLAYGROUND_EXPERIMENTS_LOG", os.devnull)
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
        r = asyncio.run(measure(Path(tmp) / "runs", args.runs, args.seconds, args.interval))
    print(f"launcher following {r['runs']} live runs (each appends a metrics line every {args.interval:g} s), "
          f"{r['rows_followed']} new rows shown in 2 x {r['seconds']:.0f} s")
    print(f"  CPU of the launcher process while following: {r['cpu_pct']:.1f}% of one core (target < 5%)")
    print(f"  key press -> effect: mean {r['key_ms_mean']:.1f} ms, median {r['key_ms_median']:.1f} ms, "
          f"max {r['key_ms_max']:.1f} ms over {r['keys']} keys (target < 100 ms)")
    print(f"  CPU while a key is pressed every {args.interval:g} s as well: {r['cpu_keys_pct']:.1f}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
