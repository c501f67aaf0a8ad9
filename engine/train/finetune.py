"""The finetuning loop: one `RunConfig` = one point of the regime x estimator x update matrix.

- regime `online`: every iteration collects `num_envs x num_steps` steps with the current
  policy; `offline`: one dataset is collected once by the data policy and every iteration
  updates on it (`num_iterations` times).
- estimator `gae` (critic V), `mc` (k re-rollouts from snapshots of the visited states),
  `iql` (Q - V from IQL fitted on the batch/dataset), `iql-v-gae` (GAE(gae_lambda) on IQL's V);
  beyond the seed's matrix `td` (n-step TD with the critic), `sarsa`, `two-stage`, `rank-q`
  (engine.train.estimators).
- update `ppo` (clipped ratio, value loss, KL stop, critic warmup), `awr` or `recap` (AWR that
  pushes negative-advantage actions away, engine.algos.recap).

Each iteration writes one metrics row (the deterministic SR of the latest evaluation, env steps
including MC re-rollouts, wall time, losses) and saves the policy; `resume.pt` carries what is
needed to continue a stopped run. The loop checks `should_stop()` between iterations; the worker
may also abandon an iteration in flight (see engine.worker.StopSignal), so a metrics row and its
save are written as one `critical()` section.

Device: everything follows `cfg.device` (or the `device` given to `Finetuner`): the envs are
built on it (`maniskill:` envs on 'cuda' run ManiSkill's physx_cuda backend), the networks are
built on the CPU and moved to it, and the loop's tensors are made where its data is; saved
files hold CPU tensors only (engine.train.device has the rules). The CUDA path was written and
reviewed without a GPU and is tested on the CPU only.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import checkpoints as ck
from ..algos.awr import awr_update
from ..algos.gae import gae
from ..algos.iql import fit_iql, iql_advantages, iql_values
from ..algos.mc import mc_estimate
from ..algos.ppo import ppo_update
from ..algos.recap import recap_update
from ..algos.regress import regress_advantages
from ..config.limits import MC_MAX_BATCH_LITE  # the memory estimate counts with it too
from ..config.schema import RunConfig
from ..envs import BatchedEnv, make_env
from ..nets import Actor, Critic
from ..runtime import thread_governor
from .device import built_on_cpu, cpu_tree, make_generators, run_device
from .evaluation import evaluate, make_eval_env
from .estimators import EXTRA_ESTIMATORS, extra_advantages
from .rollout import Rollout, collect, rollout_values
from .value_fit import regress_values


class TrainingError(RuntimeError):
    """Training produced something unusable (non-finite values)."""


@dataclass
class Batch:
    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor | None
    values: torch.Tensor | None


def _finite(name: str, x: torch.Tensor | float | None) -> None:
    if x is None:
        return
    ok = bool(torch.isfinite(x).all()) if isinstance(x, torch.Tensor) else math.isfinite(x)
    if not ok:
        raise TrainingError(f"non-finite values in {name}")


def load_policy(spec: str, env: BatchedEnv, *, learn_logstd: bool | None = None, what: str = "checkpoint",
                device: torch.device | str | None = None) -> Actor:
    """A policy from a checkpoint (role, seed name or path; 'none': a fresh network), built on the
    CPU and moved to `device` (default: where the env's observations live)."""
    device = env.device if device is None else device
    if spec and spec.lower() != "none":
        return ck.load_net(spec, "policy", env.env_id, env.obs_dim, env.act_dim, what=f"{what} {spec}",
                           learn_logstd=learn_logstd, device=device).net
    with built_on_cpu():
        actor = Actor(env.obs_dim, env.act_dim, learn_logstd=bool(learn_logstd))
    return actor.to(device)


def load_critic(spec: str, env: BatchedEnv, device: torch.device | str | None = None) -> Critic | None:
    """A critic from a checkpoint (None for 'none'), moved to `device` (default: the env's)."""
    if not spec or spec.lower() == "none":
        return None
    return ck.load_net(spec, "critic", env.env_id, env.obs_dim, what=f"critic_checkpoint {spec}",
                       device=env.device if device is None else device).net


class Finetuner:
    """One run of `cfg` on `device` (default `cfg.device`; DeviceError when it is 'cuda' and torch
    sees no GPU here)."""

    def __init__(self, cfg: RunConfig, *, run_dir: Path | None = None,
                 on_row: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 log: Callable[[str], None] = lambda msg: None,
                 critical: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 device: torch.device | str | None = None):
        self.cfg, self.run_dir, self.on_row, self.should_stop, self.log = cfg, run_dir, on_row, should_stop, log
        self.critical = critical  # sections a stop request must not cut in half (a metrics line, a save)
        self.saved_iteration = 0
        self.threads = thread_governor()  # auto: the idle cores, re-decided every iteration
        self.device = run_device(cfg.device if device is None else device)
        torch.manual_seed(cfg.seed)
        # gen: CPU (minibatch indices, init seeds); sample_gen: action noise, on the device (the same one on CPU)
        self.gen, self.sample_gen = make_generators(cfg.seed, self.device)
        self.control_mode = cfg.effective_control_mode
        self.env = make_env(cfg.env, cfg.num_envs, seed=cfg.seed, reward_mode="sparse", autoreset=True,
                            control_mode=self.control_mode, device=self.device)
        self.eval_env = make_eval_env(cfg.env, cfg.num_eval_envs, control_mode=self.control_mode, device=self.device)
        self.actor = load_policy(cfg.checkpoint, self.env, learn_logstd=cfg.learn_logstd, device=self.device)
        self.critic = load_critic(cfg.critic_checkpoint, self.env, device=self.device)
        needs_critic = cfg.estimator in ("gae", "td") or (cfg.estimator == "mc" and cfg.mc_baseline == "critic")
        if self.critic is None and needs_critic:
            with built_on_cpu():
                self.critic = Critic(self.env.obs_dim, cfg.critic_layers, cfg.critic_width)
            self.critic = self.critic.to(self.device)
        self.rollout_actor = self._rollout_actor()
        params = [p for p in self.actor.parameters() if p.requires_grad]
        if self.critic is not None and cfg.update == "ppo":
            params += list(self.critic.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5, fused=True)
        self.critic_opt = (torch.optim.Adam(self.critic.parameters(), lr=cfg.learning_rate, eps=1e-5, fused=True)
                           if self.critic is not None and cfg.update in ("awr", "recap") else None)
        self._rollout_envs: dict[int, BatchedEnv] = {}
        self.iteration = 0
        self.env_steps = 0
        self.wall_offset = 0.0
        self.peak_sr = -1.0
        self.last_eval: dict[str, float] = {}
        self.dataset: Rollout | None = None
        self.fixed_adv: tuple | None = None

    # --- pieces ----------------------------------------------------------------------------
    def _rollout_actor(self) -> Actor | None:
        cfg = self.cfg
        if cfg.estimator != "mc" or cfg.rollout_policy == "current":
            return None
        spec = cfg.optimal_checkpoint if cfg.rollout_policy == "optimal" else cfg.data_checkpoint
        return load_policy(spec, self.env, what=f"{cfg.rollout_policy} rollout policy", device=self.device)

    def _rollout_env(self, n: int) -> BatchedEnv:
        if n not in self._rollout_envs:
            self._rollout_envs[n] = make_env(self.cfg.env, n, seed=self.cfg.seed + 17, reward_mode="sparse",
                                             control_mode=self.control_mode,
                                             autoreset=False, device=self.device)
        return self._rollout_envs[n]

    @property
    def num_iterations(self) -> int:
        return self.cfg.online_iterations if self.cfg.regime == "online" else self.cfg.num_iterations

    def evaluate(self) -> dict[str, float]:
        r = evaluate(self.eval_env, self.actor, deterministic=self.cfg.deterministic_eval)
        self.last_eval = r
        return r

    def advantages(self, ro: Rollout) -> tuple[Batch, dict]:
        cfg = self.cfg
        stats: dict = {}
        rewards = ro.rewards * cfg.reward_scale
        flat = ro.flat
        values = returns = None
        if cfg.estimator == "gae":
            v, nv = rollout_values(self.critic, ro)
            adv, ret = gae(rewards, v, nv, ro.terminated, ro.truncated, cfg.gamma, cfg.gae_lambda,
                           bootstrap_success=True)  # as the seed's RL/ppo_finetune.py (engine/algos/gae.py)
            adv, values, returns = flat(adv), flat(v), flat(ret)
        elif cfg.estimator == "mc":
            actor = self.rollout_actor or self.actor
            gen = self.sample_gen

            def policy(o: torch.Tensor) -> torch.Tensor:
                return actor.act(o, deterministic=cfg.mc_deterministic, generator=gen)

            max_batch = MC_MAX_BATCH_LITE if cfg.env == "pickcube-lite" else max(2, cfg.num_envs)
            with torch.no_grad():
                res = mc_estimate(self._rollout_env, ro.all_states(), flat(ro.obs), flat(ro.actions), policy,
                                  k=cfg.mc_samples, gamma=cfg.gamma, horizon_tol=cfg.mc_horizon_tol,
                                  max_batch=max_batch, generator=gen, compute_v=cfg.mc_baseline == "mc",
                                  full_budget=cfg.mc_full_budget)
            q = res.q * cfg.reward_scale
            if res.v is not None:
                v = res.v * cfg.reward_scale
            else:
                with torch.no_grad():
                    v = self.critic(flat(ro.obs))
            adv, returns, values = q - v, q, v
            stats["mc_env_steps"] = int(res.env_steps)
            self.env_steps += int(res.env_steps)
        elif cfg.estimator in EXTRA_ESTIMATORS:  # td, sarsa, two-stage, rank-q
            adv, returns, values, extra = extra_advantages(cfg, ro, rewards, critic=self.critic, actor=self.actor,
                                                           gen=self.gen, sample_gen=self.sample_gen)
            stats.update(extra)
        else:  # iql, iql-v-gae
            t0 = time.perf_counter()
            iql = fit_iql(flat(ro.obs), flat(ro.actions), flat(rewards), flat(ro.next_obs), flat(ro.terminated),
                          gamma=cfg.gamma, tau=cfg.iql_expectile_tau, steps=cfg.iql_steps, generator=self.gen)
            stats["iql_fit_s"] = round(time.perf_counter() - t0, 2)
            if cfg.estimator == "iql":
                adv = iql_advantages(iql, flat(ro.obs), flat(ro.actions))
            else:
                T, N = ro.rewards.shape
                with torch.no_grad():
                    v = iql_values(iql, flat(ro.obs)).reshape(T, N)
                    nv = iql_values(iql, flat(ro.next_obs)).reshape(T, N)
                adv, _ = gae(rewards, v, nv, ro.terminated, ro.truncated, cfg.gamma, cfg.gae_lambda)
                adv = flat(adv)
        if cfg.regress_advantages:
            adv = regress_advantages(flat(ro.obs), flat(ro.actions), adv, epochs=20, lr=3e-4, generator=self.gen)
        _finite("advantages", adv)
        stats.update(adv_mean=float(adv.mean()), adv_std=float(adv.std()), adv_pos_frac=float((adv > 0).float().mean()))
        return Batch(flat(ro.obs), flat(ro.actions), flat(ro.logprobs), adv, returns, values), stats

    def fit_critic_regression(self, obs: torch.Tensor, returns: torch.Tensor) -> float:
        """AWR with a critic: regress V on the batch returns (same epochs/minibatches as the policy)."""
        cfg = self.cfg
        return regress_values(self.critic, self.critic_opt, obs, returns, epochs=min(cfg.update_epochs, 20),
                              batch_size=max(1, obs.shape[0] // cfg.num_minibatches), generator=self.gen,
                              max_grad_norm=cfg.max_grad_norm)

    def update(self, b: Batch) -> dict:
        cfg = self.cfg
        if cfg.update == "ppo":
            batch = {"obs": b.obs, "actions": b.actions, "logprobs": b.logprobs, "advantages": b.advantages,
                     "returns": b.returns if b.returns is not None else b.advantages,
                     "values": b.values if b.values is not None else torch.zeros_like(b.advantages)}
            train_policy = self.iteration >= cfg.warmup_iters  # iterations count from 0
            return ppo_update(self.actor, self.critic, self.opt, batch, update_epochs=cfg.update_epochs,
                              num_minibatches=cfg.num_minibatches, clip_coef=cfg.clip_coef, ent_coef=cfg.ent_coef,
                              vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm, target_kl=cfg.target_kl,
                              norm_adv=cfg.norm_adv, train_policy=train_policy, generator=self.gen)
        stats = {}
        if self.critic_opt is not None and b.returns is not None:
            stats["v_loss"] = self.fit_critic_regression(b.obs, b.returns)
        if cfg.update == "recap":
            stats.update(recap_update(self.actor, self.opt, b.obs, b.actions, b.advantages, beta=cfg.awr_beta,
                                      max_weight=cfg.awr_max_weight, alpha=cfg.recap_alpha,
                                      normalize=cfg.awr_normalize_adv, update_epochs=cfg.update_epochs,
                                      num_minibatches=cfg.num_minibatches, max_grad_norm=cfg.max_grad_norm,
                                      generator=self.gen))
            return stats
        stats.update(awr_update(self.actor, self.opt, b.obs, b.actions, b.advantages, beta=cfg.awr_beta,
                                max_weight=cfg.awr_max_weight, normalize=cfg.awr_normalize_adv,
                                rescale=cfg.awr_rescale_minibatch,
                                update_epochs=cfg.update_epochs, num_minibatches=cfg.num_minibatches,
                                max_grad_norm=cfg.max_grad_norm, generator=self.gen))
        return stats

    # --- resume ----------------------------------------------------------------------------
    def save(self, ckpt_dir: Path, best: bool) -> None:
        with self.critical():
            self._save(ckpt_dir, best)
        self.saved_iteration = self.iteration

    def _save(self, ckpt_dir: Path, best: bool) -> None:
        meta = dict(det_sr=self.last_eval.get("sr"), stoch_sr=None, env_steps=self.env_steps,
                    gamma=self.cfg.gamma, source_run=str(self.run_dir), control_mode=self.control_mode)
        ck.save_checkpoint(ckpt_dir / "latest.pt", env_id=self.cfg.env, role="finetuned", iteration=self.iteration,
                           actor=self.actor, critic=self.critic, **meta)
        if best:
            ck.save_checkpoint(ckpt_dir / "best.pt", env_id=self.cfg.env, role="finetuned",
                               iteration=self.iteration, actor=self.actor, critic=self.critic, **meta)
        state = {"iteration": self.iteration, "env_steps": self.env_steps, "peak_sr": self.peak_sr,
                 "wall_s": self.wall_offset + (time.perf_counter() - self._t0),
                 "actor": self.actor.state_dict(), "opt": self.opt.state_dict(),
                 "critic": self.critic.state_dict() if self.critic is not None else None,
                 "critic_opt": self.critic_opt.state_dict() if self.critic_opt is not None else None,
                 "gen": self.gen.get_state(),
                 "sample_gen": self.sample_gen.get_state() if self.sample_gen is not self.gen else None}
        tmp = ckpt_dir / "resume.pt.tmp"
        torch.save(cpu_tree(state), tmp)  # CPU tensors only: a CUDA run's resume file loads anywhere
        tmp.replace(ckpt_dir / "resume.pt")

    def load_resume(self, ckpt_dir: Path) -> None:
        p = ckpt_dir / "resume.pt"
        if not p.is_file():
            raise TrainingError(f"{p} is missing: the run saved no iteration to resume from")
        s = ck.load_resume_state(p)
        try:
            self.actor.load_state_dict(s["actor"])
            self.opt.load_state_dict(s["opt"])
            if self.critic is not None and s.get("critic") is not None:
                self.critic.load_state_dict(s["critic"])
            if self.critic_opt is not None and s.get("critic_opt") is not None:
                self.critic_opt.load_state_dict(s["critic_opt"])
            self.gen.set_state(s["gen"])
            if self.sample_gen is not self.gen and s.get("sample_gen") is not None:
                self.sample_gen.set_state(s["sample_gen"])  # (a file from a CPU run has none: keep the seed's)
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            raise ck.CheckpointError(f"resume file {p} does not match this run's networks "
                                     f"({ck.first_words(e)}); start a new run instead of resuming this one") from None
        self.iteration, self.env_steps = s["iteration"], s["env_steps"]
        self.peak_sr, self.wall_offset = s["peak_sr"], s["wall_s"]
        self.saved_iteration = self.iteration

    # --- the loop --------------------------------------------------------------------------
    def _row(self, extra: dict) -> dict:
        row = {"iteration": self.iteration, "env_steps": self.env_steps,
               "wall_s": round(self.wall_offset + time.perf_counter() - self._t0, 3),
               "sr": self.last_eval.get("sr"), "sr_se": self.last_eval.get("sr_se"),
               "eval_episodes": self.last_eval.get("eval_episodes"), "sr_at_end": self.last_eval.get("sr_at_end"),
               "peak_sr": self.peak_sr, **extra}
        if self.on_row:
            with self.critical():
                self.on_row(row)
        return row

    def _collect_dataset(self) -> Rollout:
        cfg = self.cfg
        data_actor = load_policy(cfg.data_checkpoint, self.env, what="data_checkpoint", device=self.device)
        obs = self.env.reset(seed=cfg.seed)
        # the CPU generator (the sampling one on a CPU run): the same dataset on every device
        ro, _ = collect(self.env, data_actor, obs, cfg.num_steps, generator=self.gen,
                        keep_states=cfg.estimator == "mc")
        self.env_steps += cfg.num_envs * cfg.num_steps
        return ro

    def run(self, *, resume: bool = False) -> str:
        """Run to the end (returns 'done') or until should_stop() (returns 'stopped')."""
        cfg = self.cfg
        self._t0 = time.perf_counter()
        ckpt_dir = (self.run_dir / "checkpoints") if self.run_dir else None
        if resume and ckpt_dir is not None:
            self.load_resume(ckpt_dir)
            self.log(f"resumed at iteration {self.iteration}, env_steps {self.env_steps}")
        else:
            self.evaluate()
            self.peak_sr = self.last_eval["sr"]
            self._row({"phase": "initial"})
        obs = self.env.reset(seed=cfg.seed + self.iteration)
        if cfg.regime == "offline":
            t0 = time.perf_counter()
            steps_before = self.env_steps
            self.dataset = self._collect_dataset()
            if resume:
                self.env_steps = steps_before  # the dataset was counted before the stop
            self.log(f"offline dataset: {cfg.num_envs * cfg.num_steps} transitions from {cfg.data_checkpoint} "
                     f"({time.perf_counter() - t0:.1f}s), success rate in data "
                     f"{self.dataset.episode_stats()['train_success_rate']:.3f}")
        while self.iteration < self.num_iterations:
            if self.should_stop():
                if ckpt_dir is not None and self.saved_iteration != self.iteration:
                    self.save(ckpt_dir, best=False)
                return "stopped"
            t_it = time.perf_counter()
            self.threads.adjust()
            if cfg.regime == "online":
                ro, obs = collect(self.env, self.actor, obs, cfg.num_steps, generator=self.sample_gen,
                                  keep_states=cfg.estimator == "mc")
                self.env_steps += cfg.num_envs * cfg.num_steps
                batch, astats = self.advantages(ro)
                astats.update(ro.episode_stats())
            else:
                recompute = (self.fixed_adv is None or cfg.rollout_policy == "current"
                             or cfg.estimator in ("gae", "td"))  # their critic is trained every iteration
                if recompute:
                    self.fixed_adv = self.advantages(self.dataset)
                batch, astats = self.fixed_adv
            t_upd = time.perf_counter()
            ustats = self.update(batch)
            for k in ("pg_loss", "v_loss", "loss", "approx_kl"):  # diagnostics such as explained_variance
                if isinstance(ustats.get(k), float):                # may be undefined (no critic): not checked
                    _finite(k, ustats[k])
            self.iteration += 1
            if self.iteration % cfg.eval_every == 0 or self.iteration == self.num_iterations:
                self.evaluate()
            new_peak = (self.last_eval.get("sr") or 0.0) > self.peak_sr
            self.peak_sr = max(self.peak_sr, self.last_eval.get("sr") or 0.0)
            with self.critical():  # the row and the save land together, or neither does
                self._row({**{k: v for k, v in astats.items() if isinstance(v, (int, float))},
                           **{k: v for k, v in ustats.items() if isinstance(v, (int, float, bool))},
                           "update_s": round(time.perf_counter() - t_upd, 3),
                           "iter_s": round(time.perf_counter() - t_it, 3), "threads": self.threads.current})
                if ckpt_dir is not None and (self.iteration % cfg.save_every == 0 or new_peak
                                             or self.iteration == self.num_iterations):
                    self.save(ckpt_dir, best=new_peak)
        return "done"

    def close(self) -> None:
        for e in [self.env, self.eval_env, *self._rollout_envs.values()]:
            e.close()
