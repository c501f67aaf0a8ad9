"""A run's wall time on this machine, estimated before launch from its config, term by term.

The rates were measured on the 2-core development machine while other work shared it (the
presets' `update_s` / `iter_s` in metrics.jsonl, docs/doctor.md): a gradient step costs about
60 us per sample it passes over (PPO actor + critic and AWR alike: 30-130 us measured), a
pickcube-lite env step with its policy forward pass about 30 us (collection, MC re-rollouts and
evaluation alike), an IQL Q/V gradient step about 75 ms. ManiSkill env steps on the CPU are
counted at 1 ms per step and core (a rough figure, not measured by this module). The estimate aims
at the order of magnitude (within a factor of 2-4): it exists to say that `update_epochs 100000`
takes days before the run starts, not to schedule a machine.
"""
from __future__ import annotations

import math

from .limits import usable_cores
from .schema import RunConfig

GRAD_SAMPLE_S = 60e-6      # one sample through one gradient step (forward + backward + Adam share)
LITE_STEP_S = 30e-6        # one pickcube-lite env step with its policy forward pass
MANISKILL_STEP_S = 1e-3    # one ManiSkill CPU env step (per core; rough)
IQL_STEP_S = 0.075         # one IQL gradient step (Q twins, V, target update)
EPISODE_STEPS = 50         # PickCube's episode length (evaluation runs whole episodes)


def _env_step_s(cfg: RunConfig) -> float:
    if cfg.env == "pickcube-lite":
        return LITE_STEP_S
    return MANISKILL_STEP_S / max(1, usable_cores())


def mc_horizon(cfg: RunConfig) -> int:
    """Steps an MC branch runs: until gamma^t < mc_horizon_tol, at most an episode."""
    if cfg.gamma >= 1.0:
        return EPISODE_STEPS
    return min(EPISODE_STEPS, max(1, math.ceil(math.log(cfg.mc_horizon_tol) / math.log(cfg.gamma))))


def estimate_wall_s(cfg: RunConfig) -> float:
    """Seconds the run is expected to take here: updates + collection + MC + IQL + evaluation."""
    iters = cfg.online_iterations if cfg.regime == "online" else cfg.num_iterations
    batch = cfg.batch_size
    step = _env_step_s(cfg)
    passes = cfg.update_epochs * batch
    if cfg.update == "awr" and cfg.critic_checkpoint.lower() != "none":
        passes += min(cfg.update_epochs, 20) * batch  # the critic's regression on the returns
    grad = iters * passes * GRAD_SAMPLE_S
    fits = iters if cfg.regime == "online" else 1     # offline advantages are fixed unless re-rolled
    collect = (iters if cfg.regime == "online" else 1) * batch * step
    mc = fits * batch * cfg.mc_samples * mc_horizon(cfg) * step if cfg.estimator == "mc" else 0.0
    iql = fits * cfg.iql_steps * IQL_STEP_S if cfg.estimator in ("iql", "iql-v-gae") else 0.0
    evals = (iters // max(1, cfg.eval_every) + 2) * cfg.num_eval_envs * EPISODE_STEPS * step
    return grad + collect + mc + iql + evals


def describe(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
