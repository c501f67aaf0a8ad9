"""Benchmark: torch thread counts on an idle and on a busy machine, in one run.

`python -m engine.bench.threads [--steps N]` times the headline preset's AWR update shape (Adam
steps on minibatches of 1,000 samples, 3x256 actor; `engine.algos.awr.awr_update`) in one process
under each condition, interleaved so that all see the same machine:

- idle machine: 1 thread, 2 threads fixed, auto (`engine.runtime`: the idle cores);
- busy machine (a child process spinning on one core for the whole timing, started before it):
  1 thread, 2 threads fixed, auto;
- busy mid-way: the spinner starts after a third of the steps (auto re-decides through the
  update loop's `tick()`; fixed counts cannot).

Printed: seconds per condition and the ratios against 1 thread on the same machine state (< 1 =
faster). Needs at least 2 usable cores to mean anything; on one core every count is 1.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from typing import Sequence

import torch

from .. import runtime
from ..algos.awr import awr_update
from ..nets import Actor

SPIN = "import time\nt = time.time()\nwhile time.time() - t < 600: pass\n"


def _update(steps: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    actor = Actor(21, 4)
    opt = torch.optim.Adam([p for p in actor.parameters() if p.requires_grad], lr=3e-4, eps=1e-5, fused=True)
    obs, act, adv = torch.randn(5000, 21, generator=g), torch.randn(5000, 4, generator=g), torch.randn(5000, generator=g)
    epochs = max(1, steps // 5)

    def go() -> None:
        awr_update(actor, opt, obs, act, adv, beta=0.5, max_weight=20.0, update_epochs=epochs, num_minibatches=5,
                   max_grad_norm=0.5, generator=g)
    return go, epochs * 5


def _governor(mode: str) -> runtime.ThreadGovernor:
    os.environ[runtime.THREADS_ENV] = mode
    runtime._GOVERNOR = None
    gov = runtime.thread_governor()
    time.sleep(runtime.MIN_WINDOW_S)
    gov.adjust()
    return gov


def _time(mode: str, busy: str, steps: int, mid_delay_s: float = 0.0) -> tuple[float, list[int]]:
    go, _ = _update(steps)
    spinners: list[subprocess.Popen] = []
    timer: threading.Timer | None = None

    def start_spin() -> None:
        spinners.append(subprocess.Popen([sys.executable, "-c", SPIN]))

    try:
        if busy == "busy":
            start_spin()
            time.sleep(1.0)  # the spinner is running before the decision
        gov = _governor(mode)
        if busy == "mid":
            timer = threading.Timer(mid_delay_s, start_spin)
            timer.start()
        t = time.perf_counter()
        go()
        return time.perf_counter() - t, list(gov.history)
    finally:
        if timer is not None:
            timer.cancel()
        for sp in spinners:
            sp.kill()
            sp.wait()


def run(steps: int = 300, out=print) -> dict:
    saved = os.environ.get(runtime.THREADS_ENV)
    cores = runtime.usable_cores()
    out(f"threads bench: {steps} AWR steps of minibatch 1,000 per timing; {cores} usable cores, "
        f"load avg {os.getloadavg()[0]:.2f}")
    res: dict = {"cores": cores}
    try:
        for busy in ("idle", "busy", "mid"):
            times = {}
            for mode in ("1", "2", "auto"):
                s, hist = _time(mode, busy, steps, mid_delay_s=res.get(f"idle_{mode}_s", 0.0) / 3)
                times[mode] = s
                res[f"{busy}_{mode}_s"] = s
                res[f"{busy}_{mode}_threads"] = hist
            out(f"  {busy:4s} machine: 1 thread {times['1']:.2f}s; 2 threads {times['2']:.2f}s "
                f"(x{times['2'] / times['1']:.2f}); auto {times['auto']:.2f}s (x{times['auto'] / times['1']:.2f}, "
                f"threads {'/'.join(map(str, res[f'{busy}_auto_threads']))})")
    finally:
        if saved is None:
            os.environ.pop(runtime.THREADS_ENV, None)
        else:
            os.environ[runtime.THREADS_ENV] = saved
        runtime._GOVERNOR = None
    return res


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.threads", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="AWR gradient steps per timing")
    a = p.parse_args(argv)
    return run(a.steps)


if __name__ == "__main__":
    main()
