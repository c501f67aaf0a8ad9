"""Evaluation: success rate of a policy on separate eval envs, without partial resets.

Every evaluation runs `num_eval_envs` full-length episodes (the eval env is built with
`ignore_terminations=True`, as ManiSkill's eval envs are) from the same fixed reset seed, so
two evaluations differ only through the policy. The eval set is the same on every device: the
twin draws its episode keys from a CPU generator, and a stochastic evaluation's action noise
comes from a CPU generator too (moved to the device), so cpu and cuda evaluate the very same
episodes. (Before, the CUDA eval set was another one: the start policy scored 0.424 there and
0.410 on the CPU's; one policy's SR varies by about 2 points (sd) from one 500-episode set to
another, and every run of a device shared its set.) It reports `sr` (success at any step of the
episode: ManiSkill's success_once), `sr_se` (its binomial standard error sqrt(sr (1 - sr) / n) over the n
episodes) and `sr_at_end` (success at the last step). Each env runs exactly one episode, so the SR
is per episode; the seed's eval loop (partial resets over a 50-step window) also counted the extra
episodes that fast successes start, which favours quick successes. Deterministic
(the actor's mean) by default; stochastic evaluation samples actions and is noisy (KB02).
"""
from __future__ import annotations

import math

import torch

from ..envs import BatchedEnv, make_env
from ..nets import Actor

EVAL_SEED_OFFSET = 1_000_003


def make_eval_env(env_id: str, num_envs: int, *, device: str | torch.device,
                  control_mode: str | None = None) -> BatchedEnv:
    """The eval envs of a run, on the run's device (no default: a caller cannot forget it)."""
    return make_env(env_id, num_envs, seed=EVAL_SEED_OFFSET, reward_mode="sparse", autoreset=False,
                    ignore_terminations=True, device=device, control_mode=control_mode)


@torch.no_grad()
def evaluate(env: BatchedEnv, actor: Actor, *, deterministic: bool = True, seed: int = EVAL_SEED_OFFSET,
             sample_seed: int = 0) -> dict[str, float]:
    obs = env.reset(seed=seed)
    gen = torch.Generator(device="cpu").manual_seed(sample_seed)  # (stochastic eval) the same draws on every device
    once = torch.zeros(env.num_envs, dtype=torch.bool, device=obs.device)
    success = once
    for _ in range(env.max_episode_steps):
        action = actor.act(obs, deterministic=deterministic, generator=gen)
        res = env.step(action)
        success = res.success
        once |= success
        obs = res.obs
    sr = float(once.float().mean())
    return {"sr": sr, "sr_se": math.sqrt(sr * (1.0 - sr) / env.num_envs), "sr_at_end": float(success.float().mean()),
            "eval_episodes": env.num_envs}
