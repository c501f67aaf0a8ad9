"""engine.runtime: the torch thread count follows the idle cores, and results do not depend on it."""
import subprocess
import sys
import time

import pytest
import torch

from engine import runtime
from engine.config.schema import RunConfig
from engine.launcher.sweep import LocalBackend, Scheduler
from engine.train.finetune import Finetuner


@pytest.fixture(autouse=True)
def _fresh_governor(monkeypatch):
    monkeypatch.setattr(runtime, "_GOVERNOR", None)
    monkeypatch.delenv(runtime.THREADS_MAX_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class FakeMachine:
    """A machine of `cpus` cores where other processes keep `others` cores busy."""

    def __init__(self, monkeypatch, cpus: int, others: float):
        self.t, self.busy, self.own, self.others = 0.0, 0.0, 0.0, others
        monkeypatch.setattr(runtime.os, "cpu_count", lambda: cpus)
        monkeypatch.setattr(runtime, "usable_cores", lambda: cpus)
        monkeypatch.setattr(runtime, "_busy_seconds", lambda: self.busy)
        monkeypatch.setattr(runtime.time, "monotonic", lambda: self.t)
        monkeypatch.setattr(runtime.time, "process_time", lambda: self.own)

    def advance(self, seconds: float, own_cores: float) -> None:
        self.t += seconds
        self.own += own_cores * seconds
        self.busy += (own_cores + self.others) * seconds


def test_fixed_count_wins(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    gov = runtime.thread_governor()
    assert gov.mode == 3 and gov.current == 3 and torch.get_num_threads() == 3
    assert gov.adjust() == 3


@pytest.mark.parametrize("cpus,others,expected", [(2, 0.0, 2), (2, 0.2, 2), (2, 1.0, 1), (2, 1.9, 1),
                                                   (16, 3.0, 4), (4, 1.0, 3), (8, 7.9, 1)])
def test_auto_uses_the_idle_cores(monkeypatch, cpus, others, expected):
    monkeypatch.setenv(runtime.THREADS_ENV, "auto")
    m = FakeMachine(monkeypatch, cpus, others)
    gov = runtime.thread_governor()
    assert gov.current == 1                    # no window yet: one thread
    m.advance(10.0, own_cores=1.0)             # our own CPU time never counts as others' load
    assert gov.adjust() == expected == torch.get_num_threads()


def test_auto_gives_a_core_back_when_another_run_starts(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "auto")
    m = FakeMachine(monkeypatch, 2, 0.0)
    gov = runtime.thread_governor()
    m.advance(5.0, own_cores=1.0)
    assert gov.adjust() == 2
    m.others = 1.0                             # a second run takes the other core
    m.advance(5.0, own_cores=1.0)
    assert gov.adjust() == 1
    m.others = 0.0                             # ... and ends
    m.advance(5.0, own_cores=1.0)
    assert gov.adjust() == 2
    assert gov.history == [1, 2, 1, 2]


def test_caps_from_the_environment(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "auto")
    m = FakeMachine(monkeypatch, 16, 0.0)
    monkeypatch.setenv(runtime.THREADS_MAX_ENV, "2")
    gov = runtime.thread_governor()
    m.advance(5.0, own_cores=1.0)
    assert gov.cap == 2 and gov.adjust() == 2


def test_usable_cores_honours_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runtime.usable_cores() == 1


def test_a_busy_core_is_seen_on_this_machine(monkeypatch):
    """Real /proc/stat: while a child process spins on one core, auto never takes every core."""
    monkeypatch.setenv(runtime.THREADS_ENV, "auto")
    gov = runtime.thread_governor()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        gov.adjust()                           # window: mostly the spinner
        time.sleep(1.0)
        n = gov.adjust()
    finally:
        spin.kill()
        spin.wait()
    assert 1 <= n <= max(1, runtime.usable_cores() - 1)


def test_local_sweep_splits_the_cores(monkeypatch):
    from engine.launcher import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "usable_cores", lambda: 8)  # the name the backend looks up
    be = LocalBackend()
    Scheduler([], parallel=4, backend=be)
    assert be.parallel == 4 and be.worker_env()[runtime.THREADS_MAX_ENV] == "2"
    assert LocalBackend(parallel=1).worker_env() is None


def _finetune(threads: int) -> tuple[dict, list[dict]]:
    runtime._GOVERNOR = None
    import os

    os.environ[runtime.THREADS_ENV] = str(threads)
    cfg = RunConfig(env="pickcube-lite", checkpoint="start", optimal_checkpoint="optimal", regime="online", estimator="mc", update="awr",
                    num_envs=64, num_steps=20, total_timesteps=2560, mc_samples=4, update_epochs=3,
                    num_minibatches=2, num_eval_envs=64, seed=3)
    rows: list[dict] = []
    t = Finetuner(cfg, on_row=rows.append)
    try:
        assert t.run() == "done"
        return {k: v.clone() for k, v in t.actor.state_dict().items()}, rows
    finally:
        t.close()


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    """The shipped ladder's start policy, MC4 re-rollouts with its optimal one, AWR: bitwise the same."""
    monkeypatch.setenv(runtime.THREADS_ENV, "1")
    monkeypatch.setenv("PLAYGROUND_SHIPPED_LADDERS", "1")
    w1, rows1 = _finetune(1)
    w2, rows2 = _finetune(2)
    assert rows1[-1]["threads"] == 1 and rows2[-1]["threads"] == 2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    drop = ("wall_s", "iter_s", "update_s", "threads")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows1] == \
           [{k: v for k, v in r.items() if k not in drop} for r in rows2]


def test_tick_re_decides_inside_an_iteration_at_most_once_a_second(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "auto")
    m = FakeMachine(monkeypatch, 2, 0.0)
    gov = runtime.thread_governor()
    m.advance(3.0, own_cores=2.0)
    assert gov.adjust() == 2
    m.others = 1.0                       # another process starts mid-update
    m.advance(0.5, own_cores=1.0)
    runtime.tick()
    assert gov.current == 2              # too soon: no look yet
    m.advance(0.6, own_cores=1.0)
    runtime.tick()
    assert gov.current == 1 == torch.get_num_threads()


def test_hot_loops_tick(monkeypatch):
    """The AWR update calls tick() once per minibatch (in the minibatch loop it shares: engine.algos.loops)."""
    from engine.algos import awr, loops
    from engine.nets import Actor

    calls = []
    monkeypatch.setattr(loops, "tick", lambda: calls.append(1))
    actor = Actor(21, 4)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    awr.awr_update(actor, opt, torch.randn(40, 21), torch.randn(40, 4), torch.randn(40), beta=0.5, max_weight=20.0,
                   update_epochs=3, num_minibatches=2, max_grad_norm=0.5)
    assert len(calls) == 6
