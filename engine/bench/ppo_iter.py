"""Benchmark (b): one GAE-PPO iteration of the engine against a CleanRL-style reference, side by side.

`python -m engine.bench.ppo_iter [--sizes 100x50,512x50]` times, for every size N envs x T steps,
one full iteration (collect N x T steps, GAE, PPO update over the batch) two ways on the same env
(`pickcube-lite`, autoreset, sparse reward), the same network sizes and the same
hyperparameters (ManiSkill's PPO defaults: gamma 0.8, lambda 0.9, 4 epochs x 32 minibatches,
clip 0.2, vf 0.5, ent 0, max grad norm 0.5, Adam 3e-4 / eps 1e-5, per-minibatch advantage
normalisation, unclipped value loss, learned log-std; the KL stop is off so that both always run
every epoch):

- reference: `cleanrl_iteration`, one function in the style of CleanRL's
  ppo_continuous_action.py (and ManiSkill's PPO baseline, which bootstraps truncated episodes
  from the value of the final observation): its own agent, a per-step `get_action_and_value`
  during collection, the backward GAE loop, and the minibatch update loop;
- engine: `engine.train.rollout.collect`, the critic on the [T, N] obs / next obs (as
  `engine.train.finetune.Finetuner.advantages` does), `engine.algos.gae.gae`, and
  `engine.algos.ppo.ppo_update`, with fused Adam as the engine uses. `--values naive` swaps the
  engine's value pass (`rollout_values`: V(next obs) reused from V(obs[t+1])) for two full
  critic passes, to show what that pass saves.

The two agents start from the same weights. Each size is warmed up once per path, then timed
`--repeats` times, interleaved (reference, engine, reference, ...); the best time of each path
and the ratio engine / reference (target <= 1.0: engine no slower) are printed with a per-phase
split (collect / GAE incl. value passes / update). Process CPU time is printed beside the wall
time: on a shared machine it is the steadier of the two (`--threads 1` to compare on one core).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Normal

from ..algos.gae import gae
from ..algos.ppo import ppo_update
from ..envs import make_env
from ..runtime import set_threads
from ..nets import Actor, Critic
from ..train.rollout import collect
from engine.train.rollout import rollout_values

HP = dict(gamma=0.8, gae_lambda=0.9, update_epochs=4, num_minibatches=32, clip_coef=0.2, ent_coef=0.0,
          vf_coef=0.5, max_grad_norm=0.5, learning_rate=3e-4, norm_adv=True, target_kl=None)


# --------------------------------------------------------------------------- the reference
def _init(layer: nn.Linear, std: float = math.sqrt(2)) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.zeros_(layer.bias)
    return layer


class RefAgent(nn.Module):
    """CleanRL's continuous-action agent: separate 3x256 Tanh actor-mean and critic MLPs and a
    state-independent learned log-std."""

    def __init__(self, obs_dim: int, act_dim: int, width: int = 256, logstd_init: float = -0.5):
        super().__init__()

        def body(out: int, out_std: float) -> nn.Sequential:
            return nn.Sequential(_init(nn.Linear(obs_dim, width)), nn.Tanh(), _init(nn.Linear(width, width)), nn.Tanh(),
                                 _init(nn.Linear(width, width)), nn.Tanh(), _init(nn.Linear(width, out), out_std))

        self.critic = body(1, 1.0)
        self.actor_mean = body(act_dim, 0.01 * math.sqrt(2))
        self.actor_logstd = nn.Parameter(torch.full((1, act_dim), logstd_init))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        mean = self.actor_mean(x)
        probs = Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)

    @torch.no_grad()
    def copy_from(self, actor: Actor, critic: Critic) -> "RefAgent":
        for dst, src in zip(self.actor_mean.parameters(), actor.mean.parameters()):
            dst.copy_(src)
        for dst, src in zip(self.critic.parameters(), critic.net.parameters()):
            dst.copy_(src)
        self.actor_logstd.copy_(actor.logstd.view(1, -1))
        return self


def cleanrl_minibatch_step(agent: RefAgent, optimizer: torch.optim.Optimizer, b_obs: torch.Tensor,
                           b_actions: torch.Tensor, b_logprobs: torch.Tensor, b_advantages: torch.Tensor,
                           b_returns: torch.Tensor, mb_inds: torch.Tensor, hp: dict = HP) -> torch.Tensor:
    """One CleanRL-style PPO minibatch step (clipped surrogate + value loss, one Adam step);
    returns the minibatch's approximate KL. Also the machine's unit in engine.bench.firstrun."""
    _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions[mb_inds])
    logratio = newlogprob - b_logprobs[mb_inds]
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()
    mb_adv = b_advantages[mb_inds]
    if hp["norm_adv"]:
        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
    pg_loss = torch.max(-mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - hp["clip_coef"], 1 + hp["clip_coef"])).mean()
    v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb_inds]) ** 2).mean()
    loss = pg_loss - hp["ent_coef"] * entropy.mean() + v_loss * hp["vf_coef"]
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(agent.parameters(), hp["max_grad_norm"])
    optimizer.step()
    return approx_kl


def cleanrl_iteration(agent: RefAgent, optimizer: torch.optim.Optimizer, env, next_obs: torch.Tensor,
                      next_done: torch.Tensor, num_steps: int, hp: dict = HP):
    """One CleanRL-style PPO iteration: collect, GAE, update. Returns (next_obs, next_done, phase seconds)."""
    n = env.num_envs
    t0 = time.perf_counter()
    obs = torch.zeros((num_steps, n, env.obs_dim))
    actions = torch.zeros((num_steps, n, env.act_dim))
    logprobs = torch.zeros((num_steps, n))
    rewards = torch.zeros((num_steps, n))
    dones = torch.zeros((num_steps, n))
    values = torch.zeros((num_steps, n))
    final_values = torch.zeros((num_steps, n))   # V(real last obs) of truncated episodes (ManiSkill's fix)
    for step in range(num_steps):
        obs[step] = next_obs
        dones[step] = next_done
        with torch.no_grad():
            action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step] = value.flatten()
        actions[step] = action
        logprobs[step] = logprob
        res = env.step(action)
        next_obs, rewards[step] = res.obs, res.reward
        next_done = (res.terminated | res.truncated).float()
        trunc_only = res.truncated & ~res.terminated
        if bool(trunc_only.any()):
            with torch.no_grad():
                final_values[step, trunc_only] = agent.get_value(res.final_obs[trunc_only]).flatten()
    t1 = time.perf_counter()

    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = torch.zeros_like(rewards)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal, nextvalues = 1.0 - next_done, next_value
            else:
                nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
            real_next = nextnonterminal * nextvalues + final_values[t]
            delta = rewards[t] + hp["gamma"] * real_next - values[t]
            advantages[t] = lastgaelam = delta + hp["gamma"] * hp["gae_lambda"] * nextnonterminal * lastgaelam
        returns = advantages + values
    t2 = time.perf_counter()

    b_obs = obs.reshape((-1, env.obs_dim))
    b_logprobs, b_actions = logprobs.reshape(-1), actions.reshape((-1, env.act_dim))
    b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)
    batch_size = n * num_steps
    minibatch_size = math.ceil(batch_size / hp["num_minibatches"])   # same count of steps as the engine
    b_inds = torch.arange(batch_size)
    for _epoch in range(hp["update_epochs"]):
        b_inds = b_inds[torch.randperm(batch_size)]
        for start in range(0, batch_size, minibatch_size):
            approx_kl = cleanrl_minibatch_step(agent, optimizer, b_obs, b_actions, b_logprobs, b_advantages,
                                               b_returns, b_inds[start:start + minibatch_size], hp)
        if hp["target_kl"] is not None and approx_kl > hp["target_kl"]:
            break
    t3 = time.perf_counter()
    return next_obs, next_done, {"collect": t1 - t0, "gae": t2 - t1, "update": t3 - t2}


# --------------------------------------------------------------------------- the engine
VALUE_ROWS = 4096


@torch.no_grad()
def values_reused(critic: Critic, ro) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's value pass (engine.train.rollout.rollout_values, adopted from this bench)."""

    return rollout_values(critic, ro)


def engine_iteration(actor: Actor, critic: Critic, optimizer: torch.optim.Optimizer, env, obs: torch.Tensor,
                     num_steps: int, gen: torch.Generator, hp: dict = HP, values: str = "engine"):
    """One iteration through the engine's pieces. Returns (obs to continue from, phase seconds).
    `values`: 'engine' = `rollout_values` (what Finetuner and pretraining do); 'naive' = V on
    every obs and every next obs."""
    t0 = time.perf_counter()
    ro, obs = collect(env, actor, obs, num_steps, generator=gen)
    t1 = time.perf_counter()
    if values == "engine":
        v, nv = values_reused(critic, ro)
    else:
        with torch.no_grad():
            v = critic(ro.obs)
            nv = critic(ro.next_obs)
    adv, ret = gae(ro.rewards, v, nv, ro.terminated, ro.truncated, hp["gamma"], hp["gae_lambda"])
    t2 = time.perf_counter()
    batch = {"obs": ro.flat(ro.obs), "actions": ro.flat(ro.actions), "logprobs": ro.flat(ro.logprobs),
             "advantages": ro.flat(adv), "returns": ro.flat(ret), "values": ro.flat(v)}
    ppo_update(actor, critic, optimizer, batch, update_epochs=hp["update_epochs"],
               num_minibatches=hp["num_minibatches"], clip_coef=hp["clip_coef"], ent_coef=hp["ent_coef"],
               vf_coef=hp["vf_coef"], max_grad_norm=hp["max_grad_norm"], target_kl=hp["target_kl"],
               norm_adv=hp["norm_adv"], generator=gen)
    t3 = time.perf_counter()
    return obs, {"collect": t1 - t0, "gae": t2 - t1, "update": t3 - t2}


# --------------------------------------------------------------------------- the benchmark
def bench_size(num_envs: int, num_steps: int, *, repeats: int = 3, seed: int = 0, env_id: str = "pickcube-lite",
               hp: dict = HP, values: str = "engine", out=print) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    env_ref = make_env(env_id, num_envs, seed=seed, reward_mode="sparse", autoreset=True)
    env_eng = make_env(env_id, num_envs, seed=seed, reward_mode="sparse", autoreset=True)
    actor = Actor(env_eng.obs_dim, env_eng.act_dim, learn_logstd=True)
    critic = Critic(env_eng.obs_dim)
    agent = RefAgent(env_ref.obs_dim, env_ref.act_dim).copy_from(actor, critic)
    opt_ref = torch.optim.Adam(agent.parameters(), lr=hp["learning_rate"], eps=1e-5)
    opt_eng = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=hp["learning_rate"], eps=1e-5,
                               fused=True)
    ref_obs, ref_done = env_ref.reset(seed=seed), torch.zeros(num_envs)
    eng_obs = env_eng.reset(seed=seed)

    ref_obs, ref_done, _ = cleanrl_iteration(agent, opt_ref, env_ref, ref_obs, ref_done, num_steps, hp)  # warm-up
    eng_obs, _ = engine_iteration(actor, critic, opt_eng, env_eng, eng_obs, num_steps, gen, hp, values)
    ref_t, eng_t, ref_c, eng_c, ref_ph, eng_ph = [], [], [], [], [], []
    for r in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        ref_obs, ref_done, ph = cleanrl_iteration(agent, opt_ref, env_ref, ref_obs, ref_done, num_steps, hp)
        ref_t.append(time.perf_counter() - t)
        ref_c.append(time.process_time() - c)
        ref_ph.append(ph)
        t, c = time.perf_counter(), time.process_time()
        eng_obs, ph = engine_iteration(actor, critic, opt_eng, env_eng, eng_obs, num_steps, gen, hp, values)
        eng_t.append(time.perf_counter() - t)
        eng_c.append(time.process_time() - c)
        eng_ph.append(ph)
    env_ref.close()
    env_eng.close()
    bi_ref, bi_eng = ref_t.index(min(ref_t)), eng_t.index(min(eng_t))
    res = {"num_envs": num_envs, "num_steps": num_steps, "ref_s": ref_t[bi_ref], "engine_s": eng_t[bi_eng],
           "ref_cpu_s": min(ref_c), "engine_cpu_s": min(eng_c),
           "ref_phases": ref_ph[bi_ref], "engine_phases": eng_ph[bi_eng],
           "ratio": eng_t[bi_eng] / ref_t[bi_ref], "ratio_cpu": min(eng_c) / min(ref_c),
           "ratio_median": statistics.median(e / f for e, f in zip(eng_t, ref_t))}

    def fmt(ph: dict) -> str:
        return " / ".join(f"{k} {v:.2f}s" for k, v in ph.items())

    out(f"{num_envs} envs x {num_steps} steps ({num_envs * num_steps} samples, "
        f"{hp['update_epochs']} epochs x {hp['num_minibatches']} minibatches), best of {repeats}:")
    out(f"  reference (CleanRL-style): {res['ref_s']:.3f} s/iteration, {res['ref_cpu_s']:.3f} CPU-s  "
        f"({fmt(res['ref_phases'])})")
    label = "engine:" if values == "engine" else "engine (naive values):"
    out(f"  {label:27s}{res['engine_s']:.3f} s/iteration, {res['engine_cpu_s']:.3f} CPU-s  "
        f"({fmt(res['engine_phases'])})")
    verdict = "PASS" if res["ratio"] <= 1.0 else "MISS"
    out(f"  ratio engine/reference: {res['ratio']:.3f} wall (median of per-repeat ratios {res['ratio_median']:.3f}), "
        f"{res['ratio_cpu']:.3f} CPU; target <= 1.0: {verdict}")
    return res


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        n, t = part.lower().split("x")
        sizes.append((int(n), int(t)))
    return sizes


def run(sizes: Sequence[tuple[int, int]] = ((100, 50), (512, 50)), *, repeats: int = 3, seed: int = 0,
        update_epochs: int = HP["update_epochs"], num_minibatches: int = HP["num_minibatches"],
        values: str = "engine", out=print) -> list[dict]:
    hp = {**HP, "update_epochs": update_epochs, "num_minibatches": num_minibatches}
    out(f"GAE-PPO iteration bench: torch threads {torch.get_num_threads()}, load avg {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs")
    results = [bench_size(n, t, repeats=repeats, seed=seed, hp=hp, values=values, out=out) for n, t in sizes]
    out(f"load avg at end {os.getloadavg()[0]:.2f}")
    return results


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m engine.bench.ppo_iter", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100x50,512x50", help="comma-separated NUM_ENVSxNUM_STEPS")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--update-epochs", type=int, default=HP["update_epochs"])
    p.add_argument("--num-minibatches", type=int, default=HP["num_minibatches"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--values", choices=("engine", "naive"), default="engine",
                   help="engine's critic pass: engine = rollout_values (reuses V(obs[t+1])); naive = two full passes")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0 = the engine's default: auto, the idle cores; engine.runtime)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    return run(parse_sizes(a.sizes), repeats=a.repeats, seed=a.seed, update_epochs=a.update_epochs,
               num_minibatches=a.num_minibatches, values=a.values)


if __name__ == "__main__":
    main()
