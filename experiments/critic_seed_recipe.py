"""Refit a ladder critic with the seed's recipe, for the A/B of docs/seed-fidelity.md item 11.

The seed's `RL/pretrain_critic.py` (zyc00/OfflineRLPlayGround) fits `pretrained_critic_sparse` on
20 rollouts x 512 envs x 50 steps (512,000 transitions, episodes ending at success and restarting
in place), with the policy sampling at its OWN log-std, gamma 0.8 MC returns cut at episode ends,
a 3x256 Tanh MLP, Adam lr 1e-3, batches of 4,096, 100 epochs, and keeps the epoch with the best
loss on a 10% (at most 10,000) validation split. The ladder's `critic-expert`
(engine/train/pretrain.py) is fitted on 1,024 whole episodes (25,708 states) at log-std -1.5 for
10 epochs. This script builds the seed-recipe critic of a ladder role's policy into a checkpoint
file that `critic_checkpoint` accepts as a path:

    python experiments/critic_seed_recipe.py --role expert --out /tmp/critic-expert-seed.pt
    playground sweep gae-ppo --seeds 0-7 --parallel 2 --critic_checkpoint /tmp/critic-expert-seed.pt

It prints the data's size and return statistics, the validation MSE and R^2 and the wall time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from engine import checkpoints as ck
from engine.envs import make_env
from engine.nets import Critic
from engine.train.device import built_on_cpu, make_generators


@torch.no_grad()
def collect_returns(env_id: str, role: str, *, envs: int, rollouts: int, steps: int, gamma: float,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """States and their discounted sparse MC returns, as the seed collects them (auto-reset envs)."""
    resolved = ck.resolve_checkpoint(role, env_id)
    with built_on_cpu():
        actor = ck.load_checkpoint(resolved.path).build_actor()
    env = make_env(env_id, envs, seed=seed, reward_mode="sparse", autoreset=True)
    _, gen = make_generators(seed, torch.device(env.device))
    obs = env.reset(seed=seed)
    all_obs, all_ret = [], []
    for _ in range(rollouts):
        b_obs, b_rew, b_done = [], [], []
        for _ in range(steps):
            action = actor.act(obs, deterministic=False, generator=gen)
            res = env.step(action)
            b_obs.append(obs)
            b_rew.append(res.reward)
            b_done.append((res.terminated | res.truncated).float())
            obs = res.obs
        ret = torch.zeros(envs)
        rets = []
        for t in reversed(range(steps)):  # returns cut at episode ends, not bootstrapped at the window's end
            ret = b_rew[t] + gamma * ret * (1.0 - b_done[t])
            rets.append(ret)
        rets.reverse()
        all_obs.append(torch.stack(b_obs).reshape(-1, obs.shape[-1]))
        all_ret.append(torch.stack(rets).reshape(-1))
    env.close()
    info = {"policy": role, "policy_file": str(resolved.path), "logstd": float(actor.logstd.mean())}
    return torch.cat(all_obs), torch.cat(all_ret), info


def fit(obs: torch.Tensor, returns: torch.Tensor, *, epochs: int, batch: int, lr: float,
        seed: int) -> tuple[Critic, float, float]:
    """Adam regression with the best-validation-epoch state kept; returns (critic, val MSE, val R^2)."""
    torch.manual_seed(seed)
    perm = torch.randperm(len(obs))
    n_val = min(len(obs) // 10, 10_000)
    val, train = perm[:n_val], perm[n_val:]
    with built_on_cpu():
        critic = Critic(obs.shape[1], 3, 256)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        order = train[torch.randperm(len(train))]
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = (critic(obs[idx]) - returns[idx]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            v = float((critic(obs[val]) - returns[val]).pow(2).mean())
        if v < best:
            best, best_state = v, {k: t.clone() for k, t in critic.state_dict().items()}
        if epoch % 10 == 9:
            print(f"  epoch {epoch + 1}/{epochs}: val MSE {v:.5f} (best {best:.5f})", flush=True)
    critic.load_state_dict(best_state)
    r2 = 1.0 - best / float(returns[val].var().clamp_min(1e-12))
    return critic, best, r2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pickcube-lite")
    p.add_argument("--role", default="expert", help="ladder role (or path) whose policy collects the data")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--envs", type=int, default=512)
    p.add_argument("--rollouts", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    t0 = time.perf_counter()
    obs, rets, info = collect_returns(a.env, a.role, envs=a.envs, rollouts=a.rollouts, steps=a.steps,
                                      gamma=a.gamma, seed=a.seed)
    print(f"data: {len(obs):,} states from {info['policy']} at its own log-std {info['logstd']:.3f}; "
          f"return mean {rets.mean():.4f}, nonzero {(rets > 0).float().mean():.1%}", flush=True)
    critic, mse, r2 = fit(obs, rets, epochs=a.epochs, batch=a.batch, lr=a.lr, seed=a.seed)
    ck.save_checkpoint(a.out, env_id=a.env, role=f"critic-{a.role}", critic=critic, gamma=a.gamma,
                       fitted_on=a.role, fit_r2=r2, data_logstd=info["logstd"], samples=int(len(obs)),
                       mean_return=float(rets.mean()), seed_alias="pretrained_critic_sparse (seed recipe)")
    print(f"saved {a.out}: val MSE {mse:.5f}, val R^2 {r2:.3f}, {time.perf_counter() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
