"""PPO pretraining from scratch and the checkpoint ladder the seed's experiments stand on.

`run_pretrain(env_id)` trains a PPO policy on the dense reward with ManiSkill PPO's PickCube
defaults, saves a checkpoint at EVERY iteration together with its measured deterministic and
stochastic success rate, and then derives the ladder:

| role             | seed name                 | how it is chosen                                                |
|------------------|---------------------------|-----------------------------------------------------------------|
| `start`          | `ckpt_76_logstd-1.5`      | first iteration with det SR in [0.40, 0.50] (else nearest 0.45), log-std set to -1.5 and frozen |
| `expert`         | `ckpt_101`                | first iteration with det SR >= 0.95 whose stochastic SR is clearly (>= 0.10) lower |
| `optimal`        | `ckpt_301`                | the best iteration (det SR, then stochastic SR)                   |
| `critic-expert`  | `pretrained_critic_sparse`| V^pi_expert: a critic regressed on the expert's sparse MC returns  |
| `critic-optimal` | (V*)                      | the same on the optimal policy's states and returns               |

The critics' data is collected with the policy sampling at the finetuning noise level (log-std
-1.5, the start policy's): the seed's expert still succeeded 62.7% of the time when sampling,
so its V carried signal; ours, sampling at its own log-std (about -0.9), succeeds ~15% of the
time (stillness is hard under action noise) and its V would be ~0 almost everywhere.
`fit_r2` is measured against single-episode returns, so intrinsic outcome noise bounds it well
below 1; `playground analyze ranking` measures V against many-rollout ground truth.

PPO stops (`stop_reason`) once an expert exists and either the best iteration cannot be beaten
(det and stochastic SR both 1.0), or nothing better came for `patience` iterations, or the
policy collapsed (det SR under half the best: PPO on this task does collapse after ~2 M steps);
and in any case after `total_timesteps` env steps (or `max_wall_s` seconds of PPO, off by
default: a wall-time cap would make the ladder depend on the machine's load).

Cost (the first-run issue; `python -m engine.bench.firstrun` measures it in units of 256
CleanRL-style PPO minibatch steps): the profile of the original configuration (512 envs x 50
steps, 4 epochs x 32 minibatches of 800, lr 3e-4, 12 iterations of patience, ~65 iterations,
~42 units) was backward + linear + tanh of the PPO minibatches (~80%), then the two critic fits
(20 epochs at lr 3e-4); collection and evaluation were a few percent. Measured per CPU-second
on pickcube-lite, progress follows the number of gradient steps, not the number of fresh
samples (1 epoch over 512 envs and 2 epochs over 256 envs learned alike per step), and lr 1e-3
moves further per step than 3e-4 (det SR 0.71 after 19 iterations of 4 x 32 steps, where 3e-4
had 0.94 only after ~35); lr 2e-3 was faster still but jumped over the start window (det SR
0.34 -> 0.28 -> 0.20 -> 0.83). So the defaults take 4 x 16 minibatches of 800 per iteration
from 256 envs at lr 1e-3, stop at a perfect iteration or after 6 without a better one, and fit
the critics at lr 1e-3 for 10 epochs (on the then shipped expert's data: held-out R^2 0.502 in
3.8 CPU-s, against 0.505 in 8.6 CPU-s for the old 20 epochs at 3e-4). Measured with the bench:
86.8 CPU-s, 14.0 units in CPU time (the old configuration: ~42).

Then the networks' kernels (`engine.kernels`: oneDNN fused linear+tanh instead of MKL products
and torch.tanh) and the thread count (`engine.runtime`: the idle cores). cProfile of
`run_pretrain('pickcube-lite', seed=0)` at one thread, 39.0 s in all (37 PPO iterations; seed 0
now: start at iteration 25, det SR 0.42; expert 31; optimal 37, det and stochastic SR 1.0):
`ppo_update` 28.0 s cumulative, of which oneDNN's linear 23.6 s (87,605 calls) and the backward
pass 16.2 s cumulative; the critic fits 3.8 s; evaluation 2.5 s; collection 1.6 s (env steps
1.1 s). `python -m engine.bench.firstrun` (one run, load average ~1.8): pretraining 31.9 s wall
(2 threads) = 5.5 units wall, 8.8 in CPU time.

Everything lands in `<checkpoints_dir>/<env-slug>/` with an `index.json` (engine.checkpoints).

Device: `device = "cuda"` (`PretrainConfig.device`) builds the envs there (`maniskill:` envs on
ManiSkill's physx_cuda backend, with the GPU-sized defaults), moves the networks there and
keeps the loop's tensors there, as finetuning does (engine.train.device has the rules); the
files written hold CPU tensors. The CUDA path was written and reviewed without a GPU and is
tested on the CPU only.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import checkpoints as ck
from ..algos.gae import gae
from ..algos.ppo import ppo_update
from ..config.schema import resolved_control_mode
from ..envs import BatchedEnv, make_env
from ..nets import Actor, Critic
from .device import built_on_cpu, make_generators, run_device
from .evaluation import evaluate, make_eval_env
from .rollout import collect, rollout_values
from .value_fit import regress_values

START_LOGSTD = -1.5


@dataclass
class PretrainConfig:
    control_mode: str = "auto"  # auto = the seed's pd_joint_delta_pos on maniskill: envs (as finetuning's)
    num_envs: int = 256
    num_steps: int = 50
    total_timesteps: int = 2_000_000  # the cap (156 iterations); the stop rules end PPO first
    max_wall_s: float = float("inf")
    gamma: float = 0.8
    gae_lambda: float = 0.9
    update_epochs: int = 4
    num_minibatches: int = 16   # minibatches of 800, as ManiSkill's 512 x 50 / 32
    learning_rate: float = 1e-3
    target_kl: float = 0.1
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    logstd_init: float = -0.5
    num_eval_envs: int = 200
    patience: int = 6           # iterations without a better optimal, once an expert exists
    critic_episodes: int = 1024
    critic_epochs: int = 10
    critic_lr: float = 1e-3
    critic_logstd: float = START_LOGSTD
    # Train through success (episodes always last 50 steps, the dense reward keeps paying for
    # holding the cube still at the goal). With episodes ending on success and gamma 0.8,
    # hovering near the goal is worth more than the one-off success, PPO collapses after ~2 M
    # steps and the policies it makes succeed ~15% of the time when sampling: a useless oracle
    # for MC re-rollouts. Measured here: det SR 0.94 at 0.9 M steps, 1.0 from 1.3 M, stochastic too.
    ignore_terminations: bool = True
    stop_at_det_sr: float | None = None  # smoke tests: stop PPO once det SR reaches this
    device: str = "cpu"         # cuda: envs (physx_cuda for maniskill:), networks and tensors on the GPU

    @classmethod
    def for_env(cls, env_id: str, **overrides) -> "PretrainConfig":
        cfg = cls()
        if env_id.startswith("maniskill:") and (overrides.get("device") or "cpu") == "cpu":
            # physx_cpu runs ~250 steps/s per process: a from-scratch ladder on CPU is a long job.
            # (the lr / patience / critic tuning above was measured on pickcube-lite only: not used here)
            cfg = cls(num_envs=8, num_steps=50, total_timesteps=2_000_000, num_eval_envs=16, critic_episodes=64,
                      num_minibatches=8, learning_rate=3e-4, patience=12, critic_epochs=20, critic_lr=3e-4)
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg


def _measure(eval_env: BatchedEnv, actor: Actor) -> tuple[float, float]:
    det = evaluate(eval_env, actor, deterministic=True)["sr"]
    sto = evaluate(eval_env, actor, deterministic=False)["sr"]
    return det, sto


def choose_ladder(history: list[dict]) -> dict[str, dict]:
    """Pick start / expert / optimal iterations from per-iteration measurements."""
    if not history:
        return {}
    roles: dict[str, dict] = {}
    window = [h for h in history if 0.40 <= h["det_sr"] <= 0.50]
    roles["start"] = window[0] if window else min(history, key=lambda h: (abs(h["det_sr"] - 0.45), h["iteration"]))
    strong = [h for h in history if h["det_sr"] >= 0.95]
    clear = [h for h in strong if h["stoch_sr"] <= h["det_sr"] - 0.10]
    if clear or strong:
        roles["expert"] = (clear or strong)[0]
    roles["optimal"] = max(history, key=lambda h: (h["det_sr"], h["stoch_sr"], -h["iteration"]))
    return roles


def stop_reason(history: list[dict], cfg: PretrainConfig) -> str | None:
    """Why PPO stops after the latest iteration of `history`, or None to go on (module docstring)."""
    det = history[-1]["det_sr"]
    if cfg.stop_at_det_sr is not None and det >= cfg.stop_at_det_sr:
        return "stop_at_det_sr"
    if "expert" not in choose_ladder(history):
        return None
    keys = [(h["det_sr"], h["stoch_sr"]) for h in history]
    best = max(keys)
    if best >= (1.0, 1.0):
        return "perfect"
    if len(keys) - 1 - keys.index(best) >= cfg.patience:
        return "patience"
    if det < 0.5 * best[0]:
        return "collapse"
    return None


@torch.no_grad()
def mc_returns_dataset(env: BatchedEnv, actor: Actor, gamma: float, episodes: int, seed: int,
                       deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """States visited by `actor` (sampling) and their discounted sparse returns, whole episodes only."""
    obs_all, ret_all = [], []
    _, gen = make_generators(seed, torch.device(env.device))  # samples actions: on the env's device
    rounds = max(1, math.ceil(episodes / env.num_envs))
    for r in range(rounds):
        obs = env.reset(seed=seed + r)
        T, N = env.max_episode_steps, env.num_envs
        alive = torch.ones(N, dtype=torch.bool, device=obs.device)
        b_obs, b_rew, b_alive = [], [], []
        for _ in range(T):
            action = actor.act(obs, deterministic=deterministic, generator=gen)
            res = env.step(action)
            b_obs.append(obs)
            b_alive.append(alive.clone())
            b_rew.append(res.reward * alive)
            alive = alive & ~res.terminated & ~res.truncated
            obs = res.obs
            if not alive.any():
                break
        ret = torch.zeros(N, device=obs.device)
        rets = []
        for t in reversed(range(len(b_rew))):
            ret = b_rew[t] + gamma * ret * b_alive[t + 1].float() if t + 1 < len(b_rew) else b_rew[t].clone()
            rets.append(ret)
        rets.reverse()
        o, g, a = torch.stack(b_obs), torch.stack(rets), torch.stack(b_alive)
        obs_all.append(o[a])
        ret_all.append(g[a])
    return torch.cat(obs_all), torch.cat(ret_all)


def fit_critic(obs: torch.Tensor, returns: torch.Tensor, *, epochs: int, seed: int, layers: int = 3,
               width: int = 256, lr: float = 3e-4, batch_size: int = 512) -> tuple[Critic, float]:
    torch.manual_seed(seed)
    with built_on_cpu():
        critic = Critic(obs.shape[1], layers, width)
    critic = critic.to(obs.device)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, eps=1e-5, fused=True)
    index_gen, _ = make_generators(seed, obs.device)
    regress_values(critic, opt, obs, returns, epochs=epochs, batch_size=batch_size, generator=index_gen)
    with torch.no_grad():
        pred = critic(obs)
        r2 = 1.0 - float((pred - returns).pow(2).mean() / returns.var().clamp_min(1e-8))
    return critic, r2


def run_pretrain(env_id: str, *, seed: int = 0, root: Path | None = None,
                 progress: Callable[[dict], None] | None = None, **overrides) -> dict:
    """Train, keep every iteration, derive the ladder; returns the ladder index."""
    from ..runtime import thread_governor

    threads = thread_governor()  # auto: the idle cores, re-decided every iteration
    cfg = PretrainConfig.for_env(env_id, **overrides)
    say = progress or (lambda info: None)
    out_dir = ck.ladder_dir(env_id, root)
    iter_dir = out_dir / "pretrain"
    iter_dir.mkdir(parents=True, exist_ok=True)
    dev = run_device(cfg.device)
    torch.manual_seed(seed)
    mode = resolved_control_mode(env_id, cfg.control_mode)
    env = make_env(env_id, cfg.num_envs, seed=seed, reward_mode="dense", autoreset=True,
                   ignore_terminations=cfg.ignore_terminations, control_mode=mode, device=dev)
    eval_env = make_eval_env(env_id, cfg.num_eval_envs, control_mode=mode, device=dev)
    with built_on_cpu():
        actor = Actor(env.obs_dim, env.act_dim, logstd_init=cfg.logstd_init, learn_logstd=True)
        critic = Critic(env.obs_dim)
    actor, critic = actor.to(dev), critic.to(dev)
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=cfg.learning_rate, eps=1e-5,
                           fused=True)
    gen, sample_gen = make_generators(seed, dev)  # one generator on the CPU, as before
    obs = env.reset(seed=seed)
    history: list[dict] = []
    t0 = time.perf_counter()
    env_steps = 0
    iterations = max(1, cfg.total_timesteps // (cfg.num_envs * cfg.num_steps))
    stop = None
    for it in range(1, iterations + 1):
        threads.adjust()
        frac = 1.0 - (it - 1) / iterations
        for g in opt.param_groups:
            g["lr"] = frac * cfg.learning_rate
        ro, obs = collect(env, actor, obs, cfg.num_steps, generator=sample_gen)
        env_steps += cfg.num_envs * cfg.num_steps
        values, next_values = rollout_values(critic, ro)
        adv, ret = gae(ro.rewards, values, next_values, ro.terminated, ro.truncated, cfg.gamma, cfg.gae_lambda)
        batch = {"obs": ro.flat(ro.obs), "actions": ro.flat(ro.actions), "logprobs": ro.flat(ro.logprobs),
                 "advantages": ro.flat(adv), "returns": ro.flat(ret), "values": ro.flat(values)}
        stats = ppo_update(actor, critic, opt, batch, update_epochs=cfg.update_epochs,
                           num_minibatches=cfg.num_minibatches, clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef,
                           vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm, target_kl=cfg.target_kl,
                           norm_adv=True, generator=gen)
        det, sto = _measure(eval_env, actor)
        fname = f"pretrain/iter_{it:04d}.pt"
        ck.save_checkpoint(out_dir / fname, env_id=env_id, role="pretrain", iteration=it, actor=actor,
                           critic=critic, det_sr=det, stoch_sr=sto, env_steps=env_steps, gamma=cfg.gamma,
                           control_mode=mode)
        row = {"iteration": it, "env_steps": env_steps, "det_sr": det, "stoch_sr": sto,
               "logstd": float(actor.logstd.detach().mean()), "file": fname,
               "wall_s": round(time.perf_counter() - t0, 2), "train_dense_return": float(ro.rewards.sum(0).mean())}
        history.append(row)
        say({"phase": "ppo", "iterations": iterations, **row, **{k: v for k, v in stats.items()
                                                                  if isinstance(v, (int, float))}})
        stop = stop_reason(history, cfg)
        if stop is None and time.perf_counter() - t0 > cfg.max_wall_s:
            stop = "max_wall_s"
        if stop is not None:
            break
    env.close()
    index = build_ladder(env_id, history, cfg, seed=seed, root=root, progress=say)
    # (no Infinity in index.json: it stays strict JSON)
    plain = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(cfg).items()}
    index["pretrain"] = {**plain, "seed": seed, "wall_s": round(time.perf_counter() - t0, 1),
                         "env_steps": env_steps, "iterations_run": len(history), "stop_reason": stop or "total_timesteps"}
    ck.write_index(env_id, index, root)
    eval_env.close()
    return ck.tag_index(index, "built", out_dir)


def build_ladder(env_id: str, history: list[dict], cfg: PretrainConfig, *, seed: int, root: Path | None,
                 progress: Callable[[dict], None]) -> dict:
    out_dir = ck.ladder_dir(env_id, root)
    chosen = choose_ladder(history)
    roles: dict[str, dict] = {}
    mode = resolved_control_mode(env_id, cfg.control_mode)
    dev = run_device(cfg.device)
    eval_env = make_eval_env(env_id, cfg.num_eval_envs, control_mode=mode, device=dev)

    def policy(file: str) -> Actor:
        return ck.load_net(out_dir / file, "policy", env_id, what=f"ladder policy {file}", device=dev).net

    for role in ("start", "expert", "optimal"):
        if role not in chosen:
            continue
        src = chosen[role]
        actor = policy(src["file"])
        if role == "start":
            actor.set_logstd(START_LOGSTD, learn=False)
        det, sto = _measure(eval_env, actor)
        seed_name = (f"ckpt_{src['iteration']}_logstd-1.5" if role == "start" else f"ckpt_{src['iteration']}")
        fname = f"{role}.pt"
        ck.save_checkpoint(out_dir / fname, env_id=env_id, role=role, iteration=src["iteration"], actor=actor,
                           det_sr=det, stoch_sr=sto, source=src["file"], seed_name=seed_name,
                           seed_alias=ck.ROLE_SEED_NAME[role], control_mode=mode)
        roles[role] = {"file": fname, "iteration": src["iteration"], "det_sr": det, "stoch_sr": sto,
                       "logstd": float(actor.logstd.detach().mean()), "seed_name": seed_name,
                       "seed_alias": ck.ROLE_SEED_NAME[role], "source": src["file"]}
        progress({"phase": "ladder", "role": role, **roles[role]})
    # critics: V^pi fitted to the policy's own sparse MC returns (gamma of the seed's runs)
    data_env = make_env(env_id, min(cfg.critic_episodes, 512 if not env_id.startswith("maniskill:") else cfg.num_envs),
                        seed=seed + 77, reward_mode="sparse", autoreset=False, control_mode=mode, device=dev)
    for role, policy_role in (("critic-expert", "expert"), ("critic-optimal", "optimal")):
        if policy_role not in roles:
            continue
        actor = policy(roles[policy_role]["file"])
        actor.set_logstd(cfg.critic_logstd)
        obs, rets = mc_returns_dataset(data_env, actor, cfg.gamma, cfg.critic_episodes, seed=seed + 1000)
        critic, r2 = fit_critic(obs, rets, epochs=cfg.critic_epochs, seed=seed, lr=cfg.critic_lr)
        fname = f"{role}.pt"
        ck.save_checkpoint(out_dir / fname, env_id=env_id, role=role, iteration=roles[policy_role]["iteration"],
                           critic=critic, gamma=cfg.gamma, fitted_on=policy_role, fit_r2=r2,
                           data_logstd=cfg.critic_logstd, samples=int(obs.shape[0]),
                           mean_return=float(rets.mean()), seed_alias=ck.ROLE_SEED_NAME.get(role, ""))
        roles[role] = {"file": fname, "iteration": roles[policy_role]["iteration"], "gamma": cfg.gamma,
                       "fitted_on": policy_role, "fit_r2": r2, "samples": int(obs.shape[0]),
                       "seed_alias": ck.ROLE_SEED_NAME.get(role, "")}
        progress({"phase": "ladder", "role": role, **roles[role]})
    data_env.close()
    eval_env.close()
    return {"env_id": env_id, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "roles": roles,
            "iterations": history}
