"""The launcher in a real terminal: tmux (a private server, `-L`) starts `playground` on an
isolated runs directory and a presets directory holding one tiny preset; keys pick the preset
and launch it; the pane shows the run with an SR value within a bounded time; ctrl+q quits;
neither the app nor the run's worker is left running."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.launcher import pid_alive

TMUX = shutil.which("tmux")
ROOT = Path(__file__).resolve().parents[1]
TINY_PRESET = """\
description = "a tiny GAE PPO run on pickcube-lite (no checkpoint ladder needed)"
regime = "online"
estimator = "gae"
update = "ppo"
checkpoint = "none"
critic_checkpoint = "none"
gamma = 0.99
num_envs = 8
num_steps = 10
total_timesteps = 400
update_epochs = 1
num_minibatches = 2
num_eval_envs = 8
"""


@pytest.fixture
def tmux(tmp_path):
    if TMUX is None:
        pytest.skip("tmux is not installed")
    sock = f"playground-test-{os.getpid()}"

    def cmd(*args: str, check: bool = True) -> str:
        p = subprocess.run([TMUX, "-L", sock, *args], capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {p.stderr}")
        return p.stdout

    yield cmd
    cmd("kill-server", check=False)


def playground_command() -> list[str]:
    exe = shutil.which("playground")
    return [exe] if exe else [sys.executable, "-c", "from engine.cli.app import main; main()"]


def wait_pane(tmux, pattern: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = tmux("capture-pane", "-p", "-t", "main")
        if re.search(pattern, screen):
            return screen
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} did not appear within {timeout:g}s; the pane shows:\n{screen}")


def send_until(tmux, keys: list[str], pattern: str, timeout: float) -> str:
    """Send `keys` until `pattern` shows (keys sent while the app starts up may be lost)."""
    end = time.monotonic() + timeout
    while True:
        tmux("send-keys", "-t", "main", *keys)
        try:
            return wait_pane(tmux, pattern, 3)
        except AssertionError:
            if time.monotonic() > end:
                raise


def test_playground_in_tmux_launches_a_preset_shows_its_sr_and_quits(tmux, tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "tiny.toml").write_text(TINY_PRESET)
    runs, pidfile = tmp_path / "runs", tmp_path / "app.pid"
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)), "PLAYGROUND_RUNS_DIR": str(runs),
           "PLAYGROUND_PRESETS_DIR": str(presets), "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"),
           "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md"), "PLAYGROUND_THREADS": "1"}
    env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    line = (f"echo $$ > {shlex.quote(str(pidfile))}; cd {shlex.quote(str(tmp_path))}; "
            f"exec env -u PLAYGROUND_WORKER {env_words} {shlex.join(playground_command())}")
    tmux("new-session", "-d", "-s", "main", "-x", "100", "-y", "30", f"sh -c {shlex.quote(line)}")
    wait_pane(tmux, r"pick a preset", 60)
    app_pid = int(pidfile.read_text())
    send_until(tmux, ["Enter"], r"\btiny\b", 60)              # open the preset list (the focused field)
    send_until(tmux, ["Down", "Enter"], r"a tiny GAE PPO", 20)  # choose "tiny"
    wait_pane(tmux, r"online gae \+ ppo", 60)                  # validated
    tmux("send-keys", "-t", "main", "C-r")          # launch
    # the run's row: status, then numbers with an SR percentage, then its preset
    screen = wait_pane(tmux, r"\b(queued|running|done)\b.*\d+\.\d%.*\btiny\b", 120)
    assert "SR now" in screen
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    wait_pane(tmux, r"\bdone\b.*\btiny\b", 120)
    tmux("send-keys", "-t", "main", "C-q")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done"
    end = time.monotonic() + 20
    while (pid_alive(app_pid) or pid_alive(status["pid"])) and time.monotonic() < end:
        time.sleep(0.2)  # the worker exits just after writing its final status
    assert not pid_alive(app_pid), "playground did not exit on ctrl+q"
    assert not pid_alive(status["pid"]), "the run's worker is still running"


KL_THROTTLED_PRESET = TINY_PRESET.replace("update_epochs = 1", "update_epochs = 20\ntarget_kl = 0.0001").replace(
    "a tiny GAE PPO run", "a tiny PPO run whose KL stop ends every update in its first epochs")


def test_monitor_in_tmux_shows_the_doctors_finding_and_any_metric_as_the_curve(tmux, tmp_path):
    """A run with a provoked symptom (PPO, 20 epochs, target_kl 1e-4: the KL stop ends every update
    in its first epochs, seed issue 3) shows the doctor's DOC04 in the monitor; `k approx_kl` makes
    approx_kl the curve; the log pane shows the per-iteration engine.log line."""
    (tmp_path / "kl.toml").write_text(KL_THROTTLED_PRESET)
    runs = tmp_path / "runs"
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)), "PLAYGROUND_RUNS_DIR": str(runs),
           "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"), "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md"),
           "PLAYGROUND_THREADS": "1", "PLAYGROUND_PRESETS_DIR": str(tmp_path)}
    child = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_WORKER"}
    done = subprocess.run([*playground_command(), "run", str(tmp_path / "kl.toml"), "--force", "--json"],
                          env={**child, **env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "DOC04" in [d["id"] for d in json.loads(done.stdout)["doctor"]]
    env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    line = (f"cd {shlex.quote(str(tmp_path))}; "
            f"exec env -u PLAYGROUND_WORKER {env_words} {shlex.join(playground_command())}")
    tmux("new-session", "-d", "-s", "main", "-x", "120", "-y", "36", f"sh -c {shlex.quote(line)}")
    wait_pane(tmux, r"pick a preset", 60)
    screen = send_until(tmux, ["F3"], r"DOC04 warning", 60)        # the monitor: the run's panel
    assert "KL stop ends every PPO update" in screen and "--target_kl 100.0" in screen
    assert "SR vs env steps" in screen
    screen = wait_pane(tmux, r"iteration 5, SR 0\.\d+", 30)  # the log pane: one line per iteration, wrapped
    pane = re.sub(r"\s+", " ", "".join(row.rsplit("│", 2)[-2] if row.count("│") >= 2 else "" for row in
                                        screen.splitlines()))
    assert re.search(r"iteration 5, SR 0\.\d+\s*\+-\s*0\.\d+.*KL 0\.\d+.*KL stop after [12] epoch", pane), pane
    send_until(tmux, ["k"], r"type a metric key", 20)
    tmux("send-keys", "-t", "main", "-l", "approx_kl")
    screen = send_until(tmux, ["Enter"], r"approx_kl vs env steps", 20)
    assert "SR vs env steps" not in screen
    tmux("send-keys", "-t", "main", "C-q")


def test_monitor_in_tmux_filters_sorts_and_shows_a_runs_config(tmux, tmp_path):
    """Three run records: `/ status:failed` leaves one row, `t` sorts by status then preset...,
    `i` opens the selected run's config.toml; the screen as a terminal shows it."""
    from test_tui import make_run

    runs = tmp_path / "runs"
    make_run(runs, "alpha", [0.0, 0.8])
    make_run(runs, "beta", [0.0, 0.3], status="failed", error="worker died", seed=3)
    make_run(runs, "gamma", [0.0, 0.5], status="stopped", seed=1, gamma=0.9)
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)), "PLAYGROUND_RUNS_DIR": str(runs),
           "PLAYGROUND_CHECKPOINTS_DIR": str(tmp_path / "ck"), "PLAYGROUND_EXPERIMENTS_LOG": str(tmp_path / "log.md")}
    env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    line = f"cd {shlex.quote(str(tmp_path))}; exec env {env_words} {shlex.join(playground_command())}"
    tmux("new-session", "-d", "-s", "main", "-x", "100", "-y", "30", f"sh -c {shlex.quote(line)}")
    wait_pane(tmux, r"pick a preset", 60)
    screen = send_until(tmux, ["F3"], r"3 runs · t sort: started", 60)
    assert "/ Filter" in screen and "t Sort" in screen           # the keys in the footer
    tmux("send-keys", "-t", "main", "/")
    wait_pane(tmux, r"/ filter▌", 20)                          # the filter has the focus (its ring)
    tmux("send-keys", "-t", "main", "-l", "status:failed")
    screen = wait_pane(tmux, r"1 of 3", 20)
    assert "000000-beta" in screen and "000000-alpha" not in screen and "000000-gamma" not in screen
    tmux("send-keys", "-t", "main", "Enter")                   # back to the table; the filter stays
    wait_pane(tmux, r"/ filter status:failed ", 20)
    tmux("send-keys", "-t", "main", "/")
    wait_pane(tmux, r"/ filter▌", 20)
    tmux("send-keys", "-t", "main", "C-u", "Enter")             # clear the filter
    wait_pane(tmux, r"3 runs", 20)
    for _ in range(4):
        tmux("send-keys", "-t", "main", "t")
    screen = wait_pane(tmux, r"sort: SR now ▼", 20)
    order = [m.group(1) for r in screen.splitlines() if "%" in r and (m := re.search(r"000000-(\w+)", r))]
    assert order[:3] == ["alpha", "gamma", "beta"], screen     # best SR first
    screen = send_until(tmux, ["i"], r"config\.toml of", 20)
    assert "fully resolved config" in screen
    tmux("send-keys", "-t", "main", "C-q")
