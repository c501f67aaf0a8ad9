"""`playground analyze ranking --protocol seed`: action ranking as the seed's scripts measure it.

The seed's numbers (README "Action Ranking Quality" of zyc00/OfflineRLPlayGround; the scripts
`methods/gae/rank_mc_vs_gae.py`, `rank_nstep_td.py`, `rank_nn_regression.py`,
`rank_network_size.py`) come from this protocol, which this module runs as separate steps:

1. `collect_states`: episodes of the policy (default the `optimal` role, the seed's ckpt_301)
   with a snapshot before every step: the seed's evaluation dataset. `states` of their visited
   states are picked spread over time. A second, independent set of episodes is the training
   dataset (`collect_dataset`): the seed fits V and IQL on its training dataset.
2. `sample_candidates`: K actions per state sampled from the policy, clipped to [-1, 1].
3. `fit_values`: V(s) regressed on the training episodes' MC returns (the seed's recipe: Adam,
   weight decay 1e-4, minibatch 256, gradient clipping 0.5, 100 epochs); IQL per expectile tau
   (the seed's recipe, `engine.algos.iql_seed`, 10-step targets) on the training and evaluation
   episodes plus one branch per (state, candidate); for comparison also the finetuning loop's IQL
   (`engine.algos.iql.fit_iql`, row `iql-ours`).
4. `rollout_estimates`: R rollouts per (state, candidate): the candidate, then the policy
   (sampling), each branch with a full episode budget (the seed resets the elapsed-step counter
   on restore). Per rollout: the discounted return (MC), first-step GAE(lambda) with each value
   function, TD(n) = sum_{l<n} gamma^l delta_l with V. Values are averaged over the rollouts.
5. Scoring (`score`): the ground truth is MC = the mean return of the first M rollouts (the seed's
   M = 10). rho = Spearman over the K candidates within a state, averaged over the states where the
   truth is not constant; top1 = how often the estimator's best candidate is the truth's.
   GAE and TD(n) are computed ON THE SAME M rollouts as the truth, as the seed does (part of
   their agreement is shared noise): the `-indep` rows use rollouts M..2M-1 instead.

Options: `m_scaling` (M = 1, 2, 4, 8, 16 rows against a 16-rollout truth, as the seed's
rank_nstep_td table), `network_sizes` (V, IQL and NN widths 256/512/1024, rank_network_size).
`nn-gae` / `nn-mc`: a 3-layer Tanh net regressed on the per-pair GAE / MC advantages (the seed's
rank_nn_regression recipe: 200 epochs, Adam with weight decay, cosine schedule), predictions on
the same pairs. `sarsa`, `two-stage`, `rank-q`, `rank-q-nn` (with `beyond`, the default): the
issue-22 estimators fitted on IQL's dataset (engine.analysis.ranking_beyond). Diagnostics for
the twin: how often all M re-rolls of a pair give the same return,
the within-state vs cross-state variance of the true Q (the seed: 0.0001 vs 0.265).
"""
from __future__ import annotations

import math
from pathlib import Path
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import torch
from torch import nn

from ..algos.gae import gae
from ..algos.iql import fit_iql, iql_advantages, iql_values, seeded
from ..algos.iql_seed import fit_iql_seed, nstep_targets
from ..algos.indices import randperm
from ..algos.mc import RolloutEnvCache
from ..envs import check_env_id
from ..nets import Critic, mlp
from ..runtime import configure_threads, tick
from ..train.rollout import collect
from .ranking_beyond import beyond_rows, fit_beyond
from .ranking import (AnalysisError, Reporter, _load_policy, collect_states as _collect_states, env_factory,
                      episode_mask, finish, pearson, within_state_spearman)

__all__ = ["SeedProtocol", "SEED_RANKING", "SEED_M_SCALING", "SEED_NETWORK_SIZES", "collect_states",
           "collect_dataset", "sample_candidates", "fit_values", "rollout_estimates", "score",
           "run_seed_ranking", "seed_branches"]

# The seed's README, "Action Ranking Quality" (K = 8, M = 10): (Spearman rho, top-1 agreement).
SEED_RANKING: dict[str, tuple[float, float | None]] = {
    "mc": (1.000, 1.000), "gae": (0.931, 0.864), "td1": (0.071, 0.227), "td5": (0.343, 0.376),
    "td20": (0.960, 0.918), "iql": (0.010, 0.125), "iql-v-gae": (0.958, 0.905), "nn-gae": (0.023, None),
    "nn-mc": (0.040, None),
}
# rank_nstep_td's table: rho against a 16-rollout MC truth when every estimator uses M rollouts.
SEED_M_SCALING: dict[int, dict[str, float]] = {
    1: {"mc": 0.300, "td50": 0.258, "gae": 0.270}, 2: {"mc": 0.406, "td50": 0.379, "gae": 0.386},
    4: {"mc": 0.528, "td50": 0.521, "gae": 0.506}, 8: {"mc": 0.701, "td50": 0.696, "gae": 0.671},
    16: {"mc": 1.000, "td50": 0.997, "gae": 0.931},
}
# rank_network_size's table (hidden width of V, IQL and the regression net).
SEED_NETWORK_SIZES: dict[int, dict[str, float]] = {
    256: {"gae": 0.931, "iql": 0.007, "iql-v-gae": 0.960}, 512: {"gae": 0.934, "iql": 0.006, "iql-v-gae": 0.956},
    1024: {"gae": 0.934, "iql": 0.010, "iql-v-gae": 0.954},
}
M_SCALING = (1, 2, 4, 8, 16)
WIDTHS = (256, 512, 1024)


@dataclass(frozen=True)
class SeedProtocol:
    env_id: str = "pickcube-lite"
    policy: Any = "optimal"
    states: int = 128
    K: int = 8
    M: int = 10
    td_n: tuple[int, ...] = (1, 5, 20)
    gamma: float = 0.8
    gae_lambda: float = 0.95
    iql_taus: tuple[float, ...] = (0.5, 0.7)
    iql_nstep: int = 10
    iql_max_steps: int = 4000
    iql_epochs: int = 200
    critic_epochs: int = 100
    nn_epochs: int = 200
    eval_episodes: int = 64
    train_episodes: int = 256
    independent: bool = True
    m_scaling: bool = False
    network_sizes: bool = False
    seed: int = 0
    max_batch: int = 16384
    beyond: bool = True
    rank_q_neighbours: int = 4

    def check(self) -> None:
        for name, low in (("states", 2), ("K", 2), ("M", 1), ("eval_episodes", 1), ("train_episodes", 1),
                          ("iql_nstep", 1), ("iql_max_steps", 1), ("critic_epochs", 1), ("nn_epochs", 1)):
            if getattr(self, name) < low:
                raise AnalysisError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not self.td_n or min(self.td_n) < 1:
            raise AnalysisError(f"td_n must be a non-empty list of n >= 1, got {list(self.td_n)}")
        if self.rank_q_neighbours < 0:
            raise AnalysisError(f"rank_q_neighbours must be >= 0, got {self.rank_q_neighbours}")
        if not 0.0 < self.gamma <= 1.0:
            raise AnalysisError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.iql_taus or not all(0.0 < t < 1.0 for t in self.iql_taus):
            raise AnalysisError(f"iql_taus must be in (0, 1), got {list(self.iql_taus)}")

    @property
    def rollouts(self) -> int:
        """Rollouts run per (state, candidate): M, 2M with `independent`, >= 16 with `m_scaling`."""
        return max(self.M * (2 if self.independent else 1), max(M_SCALING) if self.m_scaling else 0)


# --------------------------------------------------------------------------- steps 1-2

def collect_states(p: SeedProtocol, env, actor, gen: torch.Generator) -> dict[str, Any]:
    """The evaluation episodes (snapshots kept) and `p.states` states picked from them: the step
    both protocols share (engine.analysis.ranking.collect_states)."""
    return _collect_states(env, actor, p.states, p.seed, gen)


def collect_dataset(env, actor, seed: int, gen: torch.Generator) -> dict[str, Any]:
    """The training episodes (one per env, no snapshots) and their alive mask."""
    ro, _ = collect(env, actor, env.reset(seed=seed), env.max_episode_steps, generator=gen)
    return {"rollout": ro, "alive": episode_mask(ro)}


@torch.no_grad()
def sample_candidates(actor, obs: torch.Tensor, K: int, gen: torch.Generator) -> torch.Tensor:
    """[S, K, act_dim] policy samples at each state, clipped to the action box as the seed does."""
    rep = obs.repeat_interleave(K, 0)
    return actor.act(rep, deterministic=False, generator=gen).clamp(-1.0, 1.0).view(obs.shape[0], K, -1)


# --------------------------------------------------------------------------- branches

@torch.no_grad()
def seed_branches(env, states, first_actions: torch.Tensor, policy: Callable, steps: int,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One branch per state: restore, the first action, then `policy`, for up to `steps` steps with
    a full budget (only success ends a branch). [T, B] tensors: obs, actions, rewards, next_obs,
    terminated (the branch's success step only), live (the step lies inside the branch)."""
    o = env.restore(states)
    a = first_actions.to(o.device, torch.float32)
    live = torch.ones(o.shape[0], dtype=torch.bool, device=o.device)
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminated",
                                                           "live")}
    for t in range(steps):
        res = env.step(a)
        term = res.terminated & live
        for k, v in (("obs", o), ("actions", a), ("rewards", res.reward.float() * live), ("next_obs", res.final_obs),
                     ("terminated", term), ("live", live.clone())):
            rec[k].append(v)
        live = live & ~res.terminated
        if not bool(live.any()) or t + 1 >= steps:
            break
        o = res.obs
        a = policy(o, generator=generator).to(torch.float32)
    return {k: torch.stack(v) for k, v in rec.items()}


def _values(vf: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        flat = x.reshape(-1, x.shape[-1])
        return torch.cat([vf(flat[i:i + 65536]) for i in range(0, flat.shape[0], 65536)]).view(x.shape[:-1])


def branch_estimates(br: dict, value_fns: dict[str, nn.Module], td_critic: str, td_n, gamma: float,
                     lam: float) -> dict[str, torch.Tensor]:
    """Per-branch [B] estimates: `mc` (discounted return), first-step GAE with each value function,
    `td{n}` with `value_fns[td_critic]`."""
    T = br["rewards"].shape[0]
    disc = gamma ** torch.arange(T, dtype=torch.float32, device=br["rewards"].device)
    out = {"mc": (disc[:, None] * br["rewards"]).sum(0)}
    no_trunc = torch.zeros_like(br["terminated"])
    for name, vf in value_fns.items():
        v, nv = _values(vf, br["obs"]), _values(vf, br["next_obs"])
        adv, _ = gae(br["rewards"], v, nv, br["terminated"], no_trunc, gamma, lam)
        out[name] = adv[0]
        if name == td_critic:
            delta = (br["rewards"] + gamma * (~br["terminated"]).float() * nv - v) * br["live"].float()
            cum = (disc[:, None] * delta).cumsum(0)
            for n in td_n:
                out[f"td{n}"] = cum[min(n, T) - 1]
    return out


def rollout_estimates(p: SeedProtocol, envs: RolloutEnvCache, states, cand: torch.Tensor, policy: Callable,
                      value_fns: dict[str, nn.Module], steps: int, gen: torch.Generator,
                      say: Callable[[str], None] = lambda m: None) -> tuple[dict[str, torch.Tensor], int]:
    """Estimates of every rollout: name -> [R, S, K] (R = p.rollouts), and the env steps spent.
    Branches are laid out rollout-major and run in chunks of at most `p.max_batch`."""
    S, K, A = cand.shape
    R = p.rollouts
    B = R * S * K
    pair = torch.arange(B) % (S * K)
    acts = cand.reshape(S * K, A)
    chunks: dict[str, list[torch.Tensor]] = {}
    env_steps = 0
    for lo in range(0, B, p.max_batch):
        idx = pair[lo:lo + p.max_batch]
        say(f"rollouts {lo:,}-{lo + idx.numel():,} of {B:,}")
        br = seed_branches(envs(idx.numel()), states.select(idx // K), acts[idx], policy, steps, gen)
        env_steps += int(br["live"].sum())
        for k, v in branch_estimates(br, value_fns, "gae", p.td_n, p.gamma, p.gae_lambda).items():
            chunks.setdefault(k, []).append(v)
    return {k: torch.cat(v).view(R, S, K) for k, v in chunks.items()}, env_steps


# --------------------------------------------------------------------------- step 3: value functions

def _mc_returns(rewards: torch.Tensor, alive: torch.Tensor, gamma: float) -> torch.Tensor:
    ret = torch.zeros_like(rewards[0])
    out = torch.empty_like(rewards)
    for t in range(rewards.shape[0] - 1, -1, -1):
        nxt = alive[t + 1].float() if t + 1 < rewards.shape[0] else torch.zeros_like(ret)
        ret = rewards[t] * alive[t].float() + gamma * ret * nxt
        out[t] = ret
    return out


def _fit_regressor(net: nn.Module, x: tuple, y: torch.Tensor, epochs: int, gen: torch.Generator,
                   cosine: bool) -> nn.Module:
    """The seed's regression loop: Adam (lr 3e-4, eps 1e-5, weight decay 1e-4), minibatch 256,
    0.5 * MSE, gradient clipping 0.5, optionally a cosine schedule to 1e-5."""
    opt = torch.optim.Adam(net.parameters(), lr=3e-4, eps=1e-5, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=1e-5) if cosine else None
    n = y.shape[0]
    for _ in range(epochs):
        order = randperm(n, gen, y.device)
        for i in range(0, n, 256):
            tick()
            mb = order[i:i + 256]
            loss = 0.5 * (net(*(t[mb] for t in x)) - y[mb]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
        if sched is not None:
            sched.step()
    return net.eval()


def _flat_transitions(src: dict, n: int, gamma: float) -> dict[str, torch.Tensor]:
    """Alive transitions of a [T, N] source with n-step targets: obs, act, rew, next, term, G, boot, disc."""
    term = src["terminated"] & src["alive"]
    done = term | ~src["alive"]
    G, boot, disc = nstep_targets(src["rewards"], src["next_obs"], term, done, n, gamma)
    m = src["alive"]
    return {"obs": src["obs"][m], "act": src["actions"][m].clamp(-1.0, 1.0), "rew": src["rewards"][m].float(),
            "next": src["next_obs"][m], "term": term[m], "G": G[m], "boot": boot[m], "disc": disc[m]}


def _rollout_source(d: dict) -> dict[str, torch.Tensor]:
    ro = d["rollout"]
    return {"obs": ro.obs, "actions": ro.actions, "rewards": ro.rewards.float(), "next_obs": ro.next_obs,
            "terminated": ro.terminated, "alive": d["alive"]}


def fit_values(p: SeedProtocol, train: dict, evald: dict, extra: dict, widths: tuple[int, ...],
               gen: torch.Generator, say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """V on MC returns and IQL per tau (and per width), on the datasets of step 1 plus `extra`
    (branches, [T, B] with `alive`). Returns {"critic": {w: Critic}, "iql": {(tau, w): IQLResult},
    "iql_ours": IQLResult, "info": {...}}."""
    ro = train["rollout"]
    ret = _mc_returns(ro.rewards.float(), train["alive"], p.gamma)
    v_obs, v_ret = ro.obs[train["alive"]], ret[train["alive"]]
    sources = (_rollout_source(train), _rollout_source(evald), extra)
    parts = [_flat_transitions(s, p.iql_nstep, p.gamma) for s in sources]
    d = {k: torch.cat([x[k] for x in parts]) for k in parts[0]}
    out: dict[str, Any] = {"critic": {}, "iql": {}, "info": {"critic_samples": int(v_ret.numel()),
                                                             "iql_transitions": int(d["obs"].shape[0])}}
    for w in widths:
        say(f"V(s) width {w} on {v_ret.numel():,} MC returns ({p.critic_epochs} epochs)")
        with seeded(gen):
            critic = Critic(v_obs.shape[1], 3, w)
        out["critic"][w] = _fit_regressor(critic, (v_obs,), v_ret, p.critic_epochs, gen, cosine=False)
        with torch.no_grad():
            r2 = 1.0 - float((out["critic"][w](v_obs) - v_ret).pow(2).mean() / v_ret.var().clamp_min(1e-8))
        out["info"][f"critic_r2@{w}"] = r2
        for tau in (p.iql_taus if w == widths[0] else p.iql_taus[:1]):
            say(f"IQL tau {tau} width {w} on {d['obs'].shape[0]:,} transitions")
            out["iql"][(tau, w)] = fit_iql_seed(d["obs"], d["act"], d["G"], d["boot"], d["disc"], tau=tau, width=w,
                                                epochs=p.iql_epochs, max_steps=p.iql_max_steps, generator=gen)
            out["info"][f"iql_{tau}@{w}"] = out["iql"][(tau, w)].stats
    say("IQL as the finetuning loop fits it (twin Q, 1-step)")
    out["iql_ours"] = fit_iql(d["obs"], d["act"], d["rew"], d["next"], d["term"], gamma=p.gamma,
                              tau=p.iql_taus[0], steps=p.iql_max_steps, generator=gen)
    if p.beyond:
        ret, traj, group = _beyond_targets(sources, p.K, p.gamma)
        out["beyond"] = fit_beyond(d["obs"], d["act"], ret, traj, group, steps=p.iql_max_steps,
                                   neighbours=p.rank_q_neighbours, gen=torch.Generator().manual_seed(p.seed + 22),
                                   say=say)  # own stream: the other rows stay as without `beyond`
        out["info"]["beyond"] = out["beyond"]["info"]
    return out


def _beyond_targets(sources: tuple, K: int, gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the alive transitions of `sources` (in `_flat_transitions`' order): the discounted
    return-to-go, a trajectory id (one per column of each source), and the evaluated state of each
    candidate branch's first step (the last source's columns, laid out state-major by K; -1 elsewhere)."""
    rets, trajs, groups, offset = [], [], [], 0
    for n, s in enumerate(sources):
        alive = s["alive"]
        T, N = alive.shape
        col = torch.arange(N).expand(T, N)
        rets.append(_mc_returns(s["rewards"].float(), alive, gamma)[alive])
        trajs.append((col + offset)[alive])
        g = torch.full((T, N), -1, dtype=torch.long)
        if n == len(sources) - 1:
            g[0] = torch.arange(N) // K
        groups.append(g[alive])
        offset += N
    return torch.cat(rets), torch.cat(trajs), torch.cat(groups)


# --------------------------------------------------------------------------- step 5: scores

def score(est: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """Within-state Spearman (mean over the states whose truth varies) and top-1 agreement."""
    ws = within_state_spearman(est, truth)
    used = ~(truth == truth[:, :1]).all(1)
    top1 = (est.argmax(1) == truth.argmax(1))[used].float()
    per = ws["per_state"][used]
    se = float(per.std() / math.sqrt(per.numel())) if per.numel() > 1 else None
    return {"rho": ws["mean"], "rho_median": ws["median"], "rho_se": se,
            "top1": float(top1.mean()) if top1.numel() else None, "states": ws["states"]}


def _nn_rows(p: SeedProtocol, obs: torch.Tensor, cand: torch.Tensor, targets: dict[str, torch.Tensor], width: int,
             gen: torch.Generator) -> dict[str, torch.Tensor]:
    """nn-<name>: a 3 x `width` Tanh net (s, a) -> target fitted on the S*K pairs, its predictions there."""
    S, K, A = cand.shape
    s = obs.repeat_interleave(K, 0)
    a = cand.reshape(S * K, A)
    out = {}
    for name, y in targets.items():
        with seeded(gen):
            net = mlp(s.shape[1] + A, 1, 3, width, out_std=1.0)
        fwd = _Pair(net)
        _fit_regressor(fwd, (s, a), y.reshape(-1), p.nn_epochs, gen, cosine=True)
        with torch.no_grad():
            out[f"nn-{name}"] = fwd(s, a).view(S, K)
    return out


class _Pair(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s, a], -1)).squeeze(-1)


# --------------------------------------------------------------------------- the whole protocol

def _value_fns(p: SeedProtocol, vals: dict, widths: tuple[int, ...]) -> dict[str, nn.Module]:
    tau0, w0 = p.iql_taus[0], widths[0]
    fns = {"gae": vals["critic"][w0], "iql-v-gae": vals["iql"][(tau0, w0)].v_net}
    for tau in p.iql_taus[1:]:
        fns[f"iql-v-gae-{tau:g}"] = vals["iql"][(tau, w0)].v_net
    for w in widths[1:]:
        fns[f"gae@{w}"] = vals["critic"][w]
        fns[f"iql-v-gae@{w}"] = vals["iql"][(tau0, w)].v_net
    return fns


def _iql_rows(p: SeedProtocol, vals: dict, obs: torch.Tensor, cand: torch.Tensor) -> dict[str, torch.Tensor]:
    S, K, A = cand.shape
    s, a = obs.repeat_interleave(K, 0), cand.reshape(S * K, A)
    out = {}
    for (tau, w), res in vals["iql"].items():
        name = "iql" + ("" if tau == p.iql_taus[0] else f"-{tau:g}") + ("" if w == 256 else f"@{w}")
        out[name] = iql_advantages(res, s, a).view(S, K)
    out["iql-ours"] = iql_advantages(vals["iql_ours"], s, a).view(S, K)
    return out


def _estimates(p: SeedProtocol, per: dict, v_mc: torch.Tensor, vals: dict, ev: dict, cand: torch.Tensor,
               widths: tuple[int, ...], gen: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The truth [S, K] (MC over the first M rollouts) and every estimator's [S, K] advantages."""
    M = p.M
    truth = per["mc"][:M].mean(0)
    est = {k: v[:M].mean(0) for k, v in per.items()}
    if p.independent:
        for k in ("mc", "gae", f"td{max(p.td_n)}"):
            est[f"{k}-indep"] = per[k][M:2 * M].mean(0)
    est.update(_iql_rows(p, vals, ev["obs"], cand))
    if "beyond" in vals:
        est.update(beyond_rows(vals["beyond"], ev["obs"], cand))
    est.update(_nn_rows(p, ev["obs"], cand, {"gae": est["gae"], "mc": truth - v_mc[:, None]}, widths[0], gen))
    for w in widths[1:]:
        est.update({f"{k}@{w}": v for k, v in _nn_rows(p, ev["obs"], cand, {"gae": est["gae"]}, w, gen).items()})
    return truth, est


def _diagnostics(p: SeedProtocol, per: dict, truth: torch.Tensor, v_mc: torch.Tensor, vals: dict,
                 ev: dict, est: dict) -> dict[str, Any]:
    """What the twin shows that the seed's ranking depends on: re-roll determinism, action effect size,
    within- vs cross-state variance, V quality."""
    rets = per["mc"][:p.M]
    q_iql = est["iql"] + iql_values(vals["iql"][(p.iql_taus[0], 256)], ev["obs"])[:, None]
    var = lambda q: (float(q.var(1, unbiased=False).mean()), float(q.mean(1).var(unbiased=False)))  # noqa: E731
    w_t, c_t = var(truth)
    w_i, c_i = var(q_iql)
    with torch.no_grad():
        v_critic = vals["critic"][256](ev["obs"])
    return {
        "pairs_all_rollouts_equal": float((rets == rets[:1]).all(0).float().mean()),
        "states_truth_constant": int((truth == truth[:, :1]).all(1).sum()),
        "mean_return": float(rets.mean()),
        "truth_q_range_mean": float((truth.max(1).values - truth.min(1).values).mean()),
        "truth_q_within_var": w_t, "truth_q_cross_var": c_t, "truth_cross_within_ratio": c_t / w_t if w_t else None,
        "iql_q_within_var": w_i, "iql_q_cross_var": c_i, "iql_cross_within_ratio": c_i / w_i if w_i else None,
        "truth_noise_std": float((rets.std(0, unbiased=True) / math.sqrt(p.M)).mean()) if p.M > 1 else None,
        "v_pearson": {"gae": pearson(v_critic, v_mc),
                      "iql": pearson(iql_values(vals["iql"][(p.iql_taus[0], 256)], ev["obs"]), v_mc)},
        "seed": {"q_within_var": 0.0001, "q_cross_var": 0.265, "ratio": 495.0, "iql_v_pearson": 0.963},
    }


def _tables(p: SeedProtocol, per: dict, est: dict, widths: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.m_scaling:
        truth16 = per["mc"][:max(M_SCALING)].mean(0)
        out["m_scaling"] = {str(m): {k: score(per[k][:m].mean(0), truth16)["rho"]
                                     for k in ("mc", "td50", "gae", "iql-v-gae") if k in per} for m in M_SCALING}
        out["seed_m_scaling"] = {str(m): v for m, v in SEED_M_SCALING.items()}
    if p.network_sizes:
        truth = per["mc"][:p.M].mean(0)
        sfx = lambda w: "" if w == widths[0] else f"@{w}"  # noqa: E731
        out["network_sizes"] = {str(w): {k: score(est[k + sfx(w)], truth)["rho"]
                                         for k in ("gae", "iql", "iql-v-gae", "nn-gae")} for w in widths}
        out["seed_network_sizes"] = {str(w): v for w, v in SEED_NETWORK_SIZES.items()}
    return out


def _prepare(p: SeedProtocol, envs: dict, actor, gen: torch.Generator, say) -> dict[str, Any]:
    """Steps 1-3: states, candidates, the extra branches for IQL, V_mc, the value functions."""
    pol = lambda o, generator=None: actor.act(o, deterministic=False, generator=generator)  # noqa: E731
    say("collecting the policy's evaluation and training episodes")
    ev = collect_states(p, envs["eval"], actor, gen)
    tr = collect_dataset(envs["train"], actor, p.seed + 1000, gen)
    cand = sample_candidates(actor, ev["obs"], p.K, gen)
    S, K, M = p.states, p.K, p.M
    steps = envs["eval"].max_episode_steps
    say(f"one branch per (state, candidate) for IQL's data; {S * M} policy rollouts for V_mc")
    idx = torch.arange(S * K)
    br = seed_branches(envs["rollout"](S * K), ev["states"].select(idx // K), cand.reshape(S * K, -1), pol, steps, gen)
    extra = {"obs": br["obs"], "actions": br["actions"], "rewards": br["rewards"], "next_obs": br["next_obs"],
             "terminated": br["terminated"], "alive": br["live"]}
    idx = torch.arange(S * M)
    first = pol(ev["obs"][idx // M], generator=gen)
    bv = seed_branches(envs["rollout"](S * M), ev["states"].select(idx // M), first, pol, steps, gen)
    disc = p.gamma ** torch.arange(bv["rewards"].shape[0], dtype=torch.float32)
    v_mc = (disc[:, None] * bv["rewards"]).sum(0).view(S, M).mean(1)
    widths = WIDTHS if p.network_sizes else (256,)
    vals = fit_values(p, tr, ev, extra, widths, gen, say)
    return {"ev": ev, "cand": cand, "v_mc": v_mc, "vals": vals, "widths": widths, "pol": pol, "steps": steps,
            "env_steps": int(br["live"].sum() + bv["live"].sum())}


def run_seed_ranking(p: SeedProtocol = SeedProtocol(), progress: Callable[[dict], None] | None = None,
                     json_out: str | Path | bool | None = False) -> dict:
    """Run the seed's ranking protocol (module docstring) and return a JSON-safe dict with at least
    protocol, states, K, M, rho {name: float}, top1 {name: float}. `json_out`: a path, None = the
    default `<runs dir>/analysis/ranking-<time>.json`, False (default) = do not write."""
    configure_threads()
    p.check()
    if p.m_scaling and 50 not in p.td_n:
        p = replace(p, td_n=tuple(sorted(set(p.td_n) | {50})))
    check_env_id(p.env_id)
    report = Reporter(progress)
    gen = torch.Generator().manual_seed(p.seed)
    mk = env_factory(p.env_id)
    envs = {"eval": mk(p.eval_episodes, p.seed), "train": mk(p.train_episodes, p.seed + 1),
            "rollout": RolloutEnvCache(lambda n: mk(n, p.seed + 17))}
    try:
        actor, policy_info = _load_policy(p.policy, envs["eval"], p.seed)
        prep = _prepare(p, envs, actor, gen, report.say)
        t_prep = report.elapsed()
        per, steps = rollout_estimates(p, envs["rollout"], prep["ev"]["states"], prep["cand"], prep["pol"],
                                       _value_fns(p, prep["vals"], prep["widths"]), prep["steps"], gen, report.say)
        t_roll = report.elapsed() - t_prep
        truth, est = _estimates(p, per, prep["v_mc"], prep["vals"], prep["ev"], prep["cand"], prep["widths"], gen)
        result = finish(_result(p, policy_info, prep, per, truth, est, steps, (t_prep, t_roll, report.elapsed())),
                        json_out)
        report.say(f"done in {result['wall_s']:.1f}s")
        return result
    finally:
        envs["eval"].close()
        envs["train"].close()
        envs["rollout"].close()


def _result(p: SeedProtocol, policy_info: dict, prep: dict, per: dict, truth: torch.Tensor, est: dict,
            steps: int, times: tuple[float, float, float]) -> dict[str, Any]:
    """Step 5: every row scored against the truth, the tables and diagnostics (before `finish`)."""
    rows = {k: score(v, truth) for k, v in est.items()}
    t_prep, t_roll, t_all = times
    return {"protocol": "seed", "env_id": p.env_id, "policy": policy_info, "states": p.states,
            "states_ranked": rows["mc"]["states"], "K": p.K, "M": p.M, "rollouts": p.rollouts,
            "rho": {k: r["rho"] for k, r in rows.items()}, "top1": {k: r["top1"] for k, r in rows.items()},
            "rho_median": {k: r["rho_median"] for k, r in rows.items()},
            "rho_se": {k: r["rho_se"] for k, r in rows.items()},
            "seed": {"rho": {k: v[0] for k, v in SEED_RANKING.items()},
                     "top1": {k: v[1] for k, v in SEED_RANKING.items()}},
            **_tables(p, per, est, prep["widths"]),
            "diagnostics": _diagnostics(p, per, truth, prep["v_mc"], prep["vals"], prep["ev"], est),
            "fits": prep["vals"]["info"], "collection_success_rate": prep["ev"]["success_rate"],
            "env_steps": steps + prep["env_steps"], "config": {**asdict(p), "policy": str(p.policy)},
            "timings": {"prepare_s": round(t_prep, 1), "rollouts_s": round(t_roll, 1)},
            "wall_s": round(t_all, 1)}
