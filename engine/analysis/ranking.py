"""`playground analyze ranking`: can an advantage estimator rank the actions of one state?

The seed's known issues 8 and 9 (finding 5): IQL's Q(s, a) - V(s) ranks the candidate actions
of a state no better than chance (Spearman rho 0.01 against MC ground truth) while its V(s) is
good (r = 0.96), because Q's variance across states is ~500x its variance across the actions of
one state; regressing advantages through a network destroys the ranking the same way
(0.93 -> 0.02); GAE(lambda = 0.95) along real trajectories keeps it, even with IQL's V (0.93).
`run_ranking(RankingProtocol(...))` measures all of that on one policy, in one process, everything
batched, as one step function per numbered step below (the seed's protocol, ranking_seed.py, has
the same shape and shares `collect_states`, `env_factory`, `Reporter` and `finish` from here):

1. Visited states. The policy (a checkpoint role/seed name/path, 'none' = a fresh network, or an
   `Actor` object) runs one episode in each of `num_states` envs (sampling, no autoreset) with
   a snapshot before every step. Of the (t, env) pairs still inside their episode, `num_states`
   are picked evenly along the time-sorted list (random order within a time step), so the
   states spread over the episode as the policy's visitation does.
2. Candidates. `num_actions` (K) actions per state sampled from the policy.
3. Ground truth. Q(s, a_k) = mean discounted sparse return of `gt_rollouts` branches that take
   a_k and then follow the policy (sampling), all S*K*gt_rollouts branches restored from the
   snapshots in big batches (`engine.algos.mc.mc_estimate`, no Python loop over states). The
   branches are run as two independent halves: their within-state rank agreement is reported as
   the ground truth's own split-half rho (how far the ground truth itself can be trusted).
   V(s) = mean over the K x gt_rollouts returns (the candidates are policy samples).
4. Estimators, each giving A(s, a_k) for every candidate (and V(s) / Q(s, a_k) where it has one):
   - `gae`: one branch per (s, a_k) (a_k, then the policy), GAE(lambda) with a critic: the given
     one (default `critic-expert`, V^pi_expert as in the seed's GAE PPO) or, with critic None /
     'none', a critic fitted on the policy's own MC returns (`engine.train.pretrain.fit_critic`).
     Q = the lambda-return of step 0, V = critic(s).
   - `mc1`, `mc16`: `mc_estimate` with k = 1 / 16 (k Q-branches and k V-branches per pair),
     A = Q - V exactly as the training loop gets it; V(s) = mean of the pairs' V estimates.
   - `iql`: `fit_iql` (expectile tau 0.7) on the policy's transitions around these states: the
     collection episodes plus every live transition of the GAE branches (which start with the
     candidates); A = min-twin Q(s, a_k) - V(s).
   - `nn_mc16`: `engine.algos.regress.regress_advantages` fitted on (s, a) -> MC-16 advantage
     over the candidates plus up to `regress_pairs` visited pairs of the collection episodes
     (their own MC-16 targets), its predictions at the candidates (the seed's finding 9).
   - `iql_v_gae`: GAE(lambda) along the same branches as `gae`, bootstrapping with IQL's V.
5. Scores per estimator: `spearman` = mean over states of the within-state Spearman correlation
   between the estimator's A(s, .) and the ground-truth Q(s, .) (average ranks for ties; states
   whose ground truth is constant over the K candidates - no ranking to recover, typically
   hopeless or certain states under the sparse reward - are left out and counted in
   `states_gt_constant`; a state where the estimator is constant but the truth is not scores
   0); `v_pearson` = Pearson r over states of the estimator's V(s) against the ground-truth
   V(s); `var_ratio` = Var over states of mean_k Q(s, a_k) / mean over states of Var_k Q(s, a_k)
   (population variances), for the ground truth and each estimator's Q. Also `pooled_pearson`:
   Pearson r of A against the ground-truth advantage over all S*K pairs (what a pooled metric
   sees, dominated by cross-state structure), env steps and wall time.

The result is a JSON-safe dict (non-finite numbers become null), written to
`<runs dir>/analysis/ranking-<timestamp>.json` unless `json_out` says otherwise;
`engine.cli.ranking_view` renders it (a rich table) for `playground analyze ranking`.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .. import checkpoints as ck
from .. import settings
from ..algos.gae import gae
from ..algos.iql import fit_iql, iql_advantages, iql_values
from ..algos.mc import RolloutEnvCache, mc_estimate, mc_horizon
from ..algos.regress import regress_advantages
from ..config.schema import resolved_control_mode
from ..envs import BatchedEnv, EnvState, check_env_id, make_env
from ..errors import UserError
from ..nets import Actor, Critic
from ..runtime import configure_threads
from ..train.pretrain import fit_critic, mc_returns_dataset
from ..train.rollout import collect

__all__ = ["AnalysisError", "ESTIMATORS", "LABELS", "SEED_REFERENCE", "average_ranks", "spearman",
           "within_state_spearman", "variance_ratio", "pearson", "ground_truth_q", "branch_rollouts",
           "RankingProtocol", "run_ranking", "env_factory", "episode_mask", "collect_states", "Reporter", "finish",
           "default_json_path", "write_json"]

ESTIMATORS = ("gae", "mc1", "mc16", "iql", "nn_mc16", "iql_v_gae")
LABELS = {
    "ground_truth": "truth MC-{gt}",
    "gae": "GAE",
    "mc1": "MC-1",
    "mc16": "MC-16",
    "iql": "IQL Q-V",
    "nn_mc16": "NN(MC-16)",
    "iql_v_gae": "IQL-V+GAE",
}
# The seed's numbers (known issues 8 and 9): within-state Spearman vs MC ground truth, V quality,
# cross-state / within-state variance ratio.
SEED_REFERENCE: dict[str, dict[str, float]] = {
    "gae": {"spearman": 0.93},
    "iql": {"spearman": 0.01, "v_pearson": 0.96, "var_ratio": 500.0},
    "nn_mc16": {"spearman": 0.02},
    "iql_v_gae": {"spearman": 0.93},
}

Progress = Callable[[dict], None]


class AnalysisError(UserError, ValueError):
    """A one-line, user-facing problem with the analysis' inputs (sizes, gamma...)."""


# --------------------------------------------------------------------------- statistics

def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks along the last dim, ties sharing their average rank (float64)."""
    x = x.double()
    xi, xj = x.unsqueeze(-1), x.unsqueeze(-2)       # [..., K, 1], [..., 1, K]
    less = (xj < xi).sum(-1).double()                 # how many entries are smaller than entry i
    equal = (xj == xi).sum(-1).double()               # ties of entry i, itself included
    return less + (equal + 1.0) / 2.0


def _row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r along the last dim; NaN where either side is constant."""
    a = a.double() - a.double().mean(-1, keepdim=True)
    b = b.double() - b.double().mean(-1, keepdim=True)
    den = (a.pow(2).sum(-1) * b.pow(2).sum(-1)).sqrt()
    r = (a * b).sum(-1) / den
    return torch.where(den > 0, r, torch.full_like(r, float("nan")))


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson r of two 1-D tensors (NaN when either is constant)."""
    return float(_row_pearson(a.reshape(-1), b.reshape(-1)))


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors with average ranks for ties (= Pearson r
    of the ranks); NaN when either side is constant."""
    x, y = torch.as_tensor(x).reshape(-1), torch.as_tensor(y).reshape(-1)
    if x.numel() != y.numel():
        raise ValueError(f"spearman: {x.numel()} vs {y.numel()} values")
    return float(_row_pearson(average_ranks(x), average_ranks(y)))


def within_state_spearman(est: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """Per-state Spearman of est[S, K] against truth[S, K], averaged over the states where the
    truth is not constant; a constant estimate there scores 0 (it ranks nothing)."""
    rho = _row_pearson(average_ranks(est), average_ranks(truth))          # [S]
    truth_const = (truth == truth[..., :1]).all(-1)
    est_const = ~truth_const & torch.isnan(rho)
    rho = torch.where(est_const, torch.zeros_like(rho), rho)
    used = ~truth_const
    n = int(used.sum())
    return {"mean": float(rho[used].mean()) if n else float("nan"),
            "median": float(rho[used].median()) if n else float("nan"),
            "states": n, "states_gt_constant": int(truth_const.sum()), "states_est_constant": int(est_const.sum()),
            "per_state": rho}


def variance_ratio(q: torch.Tensor, noise_var: float | None = None) -> float:
    """Var over states of the mean over actions / mean over states of the Var over actions
    (population variances) for q[S, K]; inf when no state varies over its actions.

    With `noise_var` (the mean variance of each entry's estimation noise, independent across
    entries), the noise's expected share is taken out of both variances first: s^2 (K-1)/K from
    the within-state one and s^2/K (S-1)/S from the cross-state one (NaN when what is left of
    the within-state variance is not positive: the noise hides it)."""
    q = q.double()
    S, K = q.shape
    cross = float(q.mean(1).var(unbiased=False))
    within = float(q.var(1, unbiased=False).mean())
    if noise_var is not None:
        cross -= noise_var / K * (S - 1) / S
        within -= noise_var * (K - 1) / K
        if within <= 0.0:
            return float("nan")
    if within == 0.0:
        return float("inf") if cross > 0 else float("nan")
    return cross / within


# --------------------------------------------------------------------------- rollouts

def ground_truth_q(make_rollout_env: Callable[[int], BatchedEnv], states: EnvState, obs: torch.Tensor,
                   actions: torch.Tensor, policy: Callable[..., torch.Tensor], *, rollouts: int, gamma: float,
                   horizon_tol: float = 1e-4, max_batch: int = 65536,
                   generator: torch.Generator | None = None) -> dict[str, Any]:
    """Q(s_i, a_i) = mean discounted sparse return over `rollouts` branches (a_i, then `policy`),
    run as two independent halves (`q_half1`, `q_half2`; the second is None when rollouts = 1)."""
    if rollouts < 1:
        raise AnalysisError(f"gt_rollouts must be >= 1, got {rollouts}")
    h1 = rollouts // 2 if rollouts >= 2 else 1
    h2 = rollouts - h1
    kw = dict(gamma=gamma, horizon_tol=horizon_tol, max_batch=max_batch, generator=generator, compute_v=False)
    r1 = mc_estimate(make_rollout_env, states, obs, actions, policy, k=h1, **kw)
    r2 = mc_estimate(make_rollout_env, states, obs, actions, policy, k=h2, **kw) if h2 else None
    q = r1.q if r2 is None else (r1.q * h1 + r2.q * h2) / rollouts
    # Var(q1 - q2) = s^2 (1/h1 + 1/h2) and Var(q) = s^2 / (h1 + h2): an unbiased per-pair estimate
    # of the noise variance of q from the two halves
    noise = None if r2 is None else (r1.q - r2.q).pow(2) * (h1 * h2 / rollouts ** 2)
    return {"q": q, "q_half1": r1.q, "q_half2": None if r2 is None else r2.q, "noise_var": noise,
            "env_steps": r1.env_steps + (r2.env_steps if r2 else 0), "horizon": r1.horizon}


@torch.no_grad()
def branch_rollouts(env: BatchedEnv, states: EnvState, first_actions: torch.Tensor,
                    policy: Callable[..., torch.Tensor], steps: int,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One branch per entry of `states`: restore, take `first_actions`, then `policy` for up to
    `steps` steps in all. Returns [T, B] tensors: obs, actions, rewards, next_obs (the real next
    state), terminated, truncated, live (the step lies inside the branch's episode)."""
    B = len(states)
    if env.num_envs != B:
        raise ValueError(f"branch_rollouts: env has {env.num_envs} envs for {B} states")
    o = env.restore(states)
    a = first_actions.to(o.device, torch.float32)
    live = torch.ones(B, dtype=torch.bool, device=o.device)
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs",
                                                           "terminated", "truncated", "live")}
    for t in range(steps):
        res = env.step(a)
        for k, v in (("obs", o), ("actions", a), ("rewards", res.reward.float()), ("next_obs", res.final_obs),
                     ("terminated", res.terminated), ("truncated", res.truncated), ("live", live.clone())):
            rec[k].append(v)
        live &= ~(res.terminated | res.truncated)
        if not bool(live.any()) or t + 1 >= steps:
            break
        o = res.obs
        a = policy(o, generator=generator).to(torch.float32)
    return {k: torch.stack(v) for k, v in rec.items()}


# --------------------------------------------------------------------------- loading

def _load_policy(policy: Any, env: BatchedEnv, seed: int) -> tuple[Actor, dict]:
    if isinstance(policy, nn.Module):
        return policy, {"spec": f"<{type(policy).__name__} object>"}
    spec = str(policy or "none").strip()
    if spec.lower() == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            actor = Actor(env.obs_dim, env.act_dim)
        return actor, {"spec": "none", "note": "freshly initialised network"}
    res = ck.load_net(spec, "policy", env.env_id, env.obs_dim, env.act_dim, what=f"policy {spec}")
    actor, m = res.net, res.meta
    return actor, {"spec": spec, "path": str(res.path), "role": res.role, "iteration": m.get("iteration"),
                   "logstd": m.get("logstd"), "det_sr": m.get("det_sr"), "stoch_sr": m.get("stoch_sr")}


def _load_critic(spec: Any, env: BatchedEnv) -> tuple[Critic | None, dict]:
    if isinstance(spec, nn.Module):
        return spec, {"spec": f"<{type(spec).__name__} object>"}
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None, {"spec": "none"}
    spec = str(spec).strip()
    res = ck.load_net(spec, "critic", env.env_id, env.obs_dim, what=f"critic {spec}")
    m = res.meta
    return res.net, {"spec": spec, "path": str(res.path), "role": res.role, "gamma": m.get("gamma"),
                              "fitted_on": m.get("fitted_on"), "fit_r2": m.get("fit_r2")}


# --------------------------------------------------------------------------- the protocol's options

@dataclass(frozen=True)
class RankingProtocol:
    """The single-rollout protocol's options (module docstring); `run_ranking(p)` runs it. The
    seed's protocol has the same shape (`engine.analysis.ranking_seed.SeedProtocol`,
    `run_seed_ranking(p)`): options with `check()`, then the steps collect states, sample
    candidates, roll out, estimate each method, score.

    `policy`: role / seed name / path / 'none' / an `Actor`. `critic`: the GAE critic (role, path,
    a `Critic`), or None / 'none' to fit one on the policy's MC returns. `estimators`: a subset of
    `ESTIMATORS` (computed in that order)."""
    env_id: str = "pickcube-lite"
    policy: Any = "start"
    critic: Any = "critic-expert"
    num_states: int = 64
    num_actions: int = 8
    gt_rollouts: int = 128
    gamma: float = 0.8
    seed: int = 0
    iql_steps: int = 10_000
    iql_tau: float = 0.7
    gae_lambda: float = 0.95
    regress_epochs: int = 20
    regress_pairs: int = 4096
    critic_episodes: int = 256
    critic_epochs: int = 20
    horizon_tol: float = 1e-4
    max_batch: int = 65536
    estimators: Sequence[str] | None = None

    def check(self) -> None:
        """One `AnalysisError` line for the first unusable option."""
        for name, low, why in (("num_states", 2, " (variances and correlations over states)"),
                               ("num_actions", 2, " (a ranking needs two candidates)"), ("gt_rollouts", 1, "")):
            if getattr(self, name) < low:
                raise AnalysisError(f"{name} must be >= {low}{why}, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise AnalysisError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.iql_steps < 1:
            raise AnalysisError(f"iql_steps must be >= 1, got {self.iql_steps}")
        given = tuple(ESTIMATORS if self.estimators is None else self.estimators)
        unknown = [e for e in given if e not in ESTIMATORS]
        if unknown or not given:
            raise AnalysisError(f"unknown estimator(s) {', '.join(unknown) or '(none given)'}: "
                                f"choose from {', '.join(ESTIMATORS)}")

    @property
    def wanted(self) -> tuple[str, ...]:
        """The estimators to compute, in `ESTIMATORS` order."""
        given = ESTIMATORS if self.estimators is None else tuple(self.estimators)
        return tuple(e for e in ESTIMATORS if e in given)

    def config(self, branch_steps: int) -> dict[str, Any]:
        """The result's `config` block."""
        return {"num_states": self.num_states, "num_actions": self.num_actions, "gt_rollouts": self.gt_rollouts,
                "gamma": self.gamma, "seed": self.seed, "iql_steps": self.iql_steps, "iql_tau": self.iql_tau,
                "gae_lambda": self.gae_lambda, "regress_epochs": self.regress_epochs,
                "regress_pairs": self.regress_pairs, "critic_episodes": self.critic_episodes,
                "critic_epochs": self.critic_epochs, "horizon_tol": self.horizon_tol, "branch_steps": branch_steps,
                "estimators": list(self.wanted)}


# --------------------------------------------------------------------------- steps both protocols share

def _select_states(alive: torch.Tensor, num_states: int, generator: torch.Generator) -> torch.Tensor:
    """Flat (t-major) indices of `num_states` alive (t, env) pairs spread evenly along time."""
    T, N = alive.shape
    flat = alive.reshape(-1).nonzero().squeeze(1)
    if flat.numel() < num_states:
        raise AnalysisError(f"only {flat.numel()} visited states to choose {num_states} from")
    t = (flat // N).double()
    order = torch.argsort(t + 0.5 * torch.rand(flat.numel(), generator=generator, dtype=torch.float64))
    picks = ((torch.arange(num_states, dtype=torch.float64) + 0.5) * flat.numel() / num_states).long()
    return flat[order[picks]]


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _finite_or_none(x.tolist()) if x.dim() else _finite_or_none(float(x))
    return x


def default_json_path(now: float | None = None) -> Path:
    root = Path(settings.get("PLAYGROUND_RUNS_DIR"))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = root / "analysis" / f"ranking-{stamp}.json"
    i = 1
    while path.exists():
        path = root / "analysis" / f"ranking-{stamp}-{i}.json"
        i += 1
    return path


def write_json(result: dict, path: str | Path | None = None) -> Path:
    """Write the result (JSON-safe already) to `path` (default: `default_json_path()`), atomically."""
    path = Path(path) if path is not None else default_json_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, allow_nan=False))
    os.replace(tmp, path)
    return path




def env_factory(env_id: str) -> Callable[[int, int], BatchedEnv]:
    """(n, seed) -> n envs of `env_id` as both protocols roll them out: sparse reward, no
    autoreset, the controller the env's ladder was trained with."""
    mode = resolved_control_mode(env_id, "auto")

    def make(n: int, seed: int) -> BatchedEnv:
        return make_env(env_id, n, seed=seed, reward_mode="sparse", autoreset=False, control_mode=mode)

    return make


def episode_mask(ro: Any) -> torch.Tensor:
    """[T, N] True where the step lies inside its env's first episode."""
    done = (ro.terminated | ro.truncated).long()
    return (done.cumsum(0) - done) == 0


def collect_states(env: BatchedEnv, actor: Actor, num_states: int, seed: int, gen: torch.Generator) -> dict[str, Any]:
    """Step 1 of both protocols: one episode of the policy per env (sampling, a snapshot before
    every step) and `num_states` of its visited states spread over time (`_select_states`).
    Returns rollout, alive ([T, N] inside the episode), all_states (every snapshot), and the
    picked states, obs, t (their time steps) and the episodes' success_rate."""
    ro, _ = collect(env, actor, env.reset(seed=seed), env.max_episode_steps, generator=gen, keep_states=True)
    alive = episode_mask(ro)
    all_states = ro.all_states()
    sel = _select_states(alive, num_states, gen)
    return {"rollout": ro, "alive": alive, "all_states": all_states, "states": all_states.select(sel),
            "obs": ro.flat(ro.obs)[sel], "t": (sel // ro.num_envs),
            "success_rate": float(ro.terminated.any(0).float().mean())}


class Reporter:
    """A protocol's progress: `say(message, phase=None)` hands {"phase" (when given), "message",
    "elapsed_s"} to the caller's callback; `elapsed()` is the seconds since the start."""

    def __init__(self, progress: Callable[[dict], None] | None):
        self.t0 = time.perf_counter()
        self.progress = progress or (lambda info: None)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def say(self, message: str, phase: str | None = None) -> None:
        info = {} if phase is None else {"phase": phase}
        self.progress({**info, "message": message, "elapsed_s": round(self.elapsed(), 1)})


def finish(result: dict, json_out: str | Path | bool | None) -> dict:
    """The result made JSON-safe (non-finite numbers -> null) and, unless `json_out` is False,
    written (`write_json`; None or True = the default path) with its `json_path`."""
    result = _finite_or_none(result)
    if json_out is not False:
        result["json_path"] = str(write_json(result, None if json_out in (None, True) else json_out))
    return result


# --------------------------------------------------------------------------- the single-rollout protocol's steps

@dataclass
class _Run:
    """What the steps of one `run_ranking` share: the options, the index generator, the envs, the
    policy, the visited states (step 1) and the candidates (step 2: S*K of them, state-major)."""
    p: RankingProtocol
    gen: torch.Generator
    make: Callable[[int, int], BatchedEnv]
    rollout_envs: RolloutEnvCache
    actor: Actor
    report: Reporter
    episode_steps: int
    visited: dict[str, Any] = field(default_factory=dict)
    states_rep: EnvState | None = None
    obs_rep: torch.Tensor | None = None
    cand: torch.Tensor | None = None

    def pol(self, o: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.actor.act(o, deterministic=False, generator=generator)

    @property
    def S(self) -> int:
        return self.p.num_states

    @property
    def K(self) -> int:
        return self.p.num_actions

    def mc_kw(self) -> dict[str, Any]:
        return dict(gamma=self.p.gamma, horizon_tol=self.p.horizon_tol, max_batch=self.p.max_batch, generator=self.gen)


def _sample_candidates(r: _Run) -> None:
    """Step 2: K policy samples at each visited state (not clipped: the env clips)."""
    rep = torch.arange(r.S).repeat_interleave(r.K)
    r.obs_rep = r.visited["obs"][rep]
    r.states_rep = r.visited["states"].select(rep)
    r.cand = r.actor.act(r.obs_rep, deterministic=False, generator=r.gen)


def _ground_truth(r: _Run) -> dict[str, Any]:
    """Step 3: MC ground truth over `gt_rollouts` branches per candidate: `ground_truth_q`'s dict
    plus q_sk [S, K], v [S], a [S, K] and wall_s."""
    t0 = time.perf_counter()
    r.report.say(f"ground truth: {r.S * r.K * r.p.gt_rollouts:,} MC branches", "ground_truth")
    gt = ground_truth_q(r.rollout_envs, r.states_rep, r.obs_rep, r.cand, r.pol, rollouts=r.p.gt_rollouts,
                        **r.mc_kw())
    q = gt["q"].view(r.S, r.K)
    v = q.mean(1)
    return {**gt, "q_sk": q, "v": v, "a": q - v[:, None], "wall_s": time.perf_counter() - t0}


def _estimate_mc1(r: _Run) -> dict[str, dict[str, Any]]:
    t0 = time.perf_counter()
    r.report.say("MC-1 on the candidates", "mc1")
    r1 = mc_estimate(r.rollout_envs, r.states_rep, r.obs_rep, r.cand, r.pol, k=1, **r.mc_kw())
    S, K = r.S, r.K
    return {"mc1": {"a": r1.advantages.view(S, K), "q": r1.q.view(S, K), "v": r1.v.view(S, K).mean(1),
                    "env_steps": r1.env_steps, "wall_s": time.perf_counter() - t0}}


def _regression_pairs(r: _Run) -> tuple[EnvState, torch.Tensor, torch.Tensor, int]:
    """The candidates plus up to `regress_pairs` visited pairs of the collection episodes (the NN
    regression's dataset): states, obs, actions, and how many visited pairs were added."""
    ro, p = r.visited["rollout"], r.p
    data_idx = r.visited["alive"].reshape(-1).nonzero().squeeze(1)
    if data_idx.numel() > p.regress_pairs:
        data_idx = data_idx[torch.randperm(data_idx.numel(), generator=r.gen)[:p.regress_pairs]]
    states = type(r.states_rep).cat([r.states_rep, r.visited["all_states"].select(data_idx)])
    obs = torch.cat([r.obs_rep, ro.flat(ro.obs)[data_idx]])
    act = torch.cat([r.cand, ro.flat(ro.actions)[data_idx]])
    return states, obs, act, int(data_idx.numel())


def _estimate_mc16(r: _Run) -> dict[str, dict[str, Any]]:
    """MC-16 on the candidates and, for `nn_mc16`, a network regressed on MC-16 advantages of the
    candidates and visited pairs, its predictions at the candidates (the seed's finding 9)."""
    t0 = time.perf_counter()
    wanted, S, K, m = r.p.wanted, r.S, r.K, r.S * r.K
    states_mc, obs_mc, act_mc, n_data = r.states_rep, r.obs_rep, r.cand, 0
    if "nn_mc16" in wanted:
        states_mc, obs_mc, act_mc, n_data = _regression_pairs(r)
    r.report.say(f"MC-16 on the {m} candidates" + (f" and {n_data} visited pairs (regression targets)"
                                                   if n_data else ""), "mc16")
    r16 = mc_estimate(r.rollout_envs, states_mc, obs_mc, act_mc, r.pol, k=16, **r.mc_kw())
    mc16_wall = time.perf_counter() - t0
    out: dict[str, dict[str, Any]] = {}
    if "mc16" in wanted:
        out["mc16"] = {"a": r16.advantages[:m].view(S, K), "q": r16.q[:m].view(S, K),
                       "v": r16.v[:m].view(S, K).mean(1), "wall_s": mc16_wall,
                       # the candidates' share of the branches' steps (exact when n_data = 0)
                       "env_steps": int(round(r16.env_steps * m / (m + n_data)))}
    if "nn_mc16" in wanted:
        t0 = time.perf_counter()
        r.report.say(f"regressing MC-16 advantages through a network ({m + n_data} pairs, "
                     f"{r.p.regress_epochs} epochs)", "nn_mc16")
        pred = regress_advantages(obs_mc, act_mc, r16.advantages, epochs=r.p.regress_epochs, lr=3e-4, generator=r.gen)
        out["nn_mc16"] = {"a": pred[:m].view(S, K), "q": None, "v": None, "env_steps": r16.env_steps,
                          "wall_s": time.perf_counter() - t0 + mc16_wall, "dataset_pairs": m + n_data,
                          "fit_pearson": pearson(pred, r16.advantages)}
    return out


def _branches(r: _Run, steps: int) -> dict[str, Any]:
    """One `steps`-step branch per candidate (GAE, IQL's data, IQL-V+GAE): `branch_rollouts`'
    [T, S*K] tensors, and its live env steps and wall time."""
    t0 = time.perf_counter()
    r.report.say(f"one {steps}-step branch per candidate", "branches")
    br = branch_rollouts(r.rollout_envs(r.S * r.K), r.states_rep, r.cand, r.pol, steps, r.gen)
    return {**br, "env_steps": int(br["live"].sum()), "wall_s": time.perf_counter() - t0}


def _fit_own_critic(r: _Run, critic_info: dict) -> Critic:
    """A critic fitted on the policy's own MC returns (no critic given); notes it in critic_info."""
    p = r.p
    r.report.say(f"fitting a critic on the policy's MC returns ({p.critic_episodes} episodes)", "critic")
    data_env = r.make(max(1, min(p.critic_episodes, 256)), p.seed + 77)
    try:
        c_obs, c_ret = mc_returns_dataset(data_env, r.actor, p.gamma, p.critic_episodes, seed=p.seed + 1000)
    finally:
        data_env.close()
    with torch.random.fork_rng(devices=[]):
        critic_net, r2 = fit_critic(c_obs, c_ret, epochs=p.critic_epochs, seed=p.seed)
    critic_info.update(fitted="policy MC returns", fit_r2=r2, samples=int(c_obs.shape[0]), gamma=p.gamma,
                       episodes=p.critic_episodes, epochs=p.critic_epochs)
    return critic_net


def _estimate_gae(r: _Run, br: dict, critic_net: Critic | None, critic_info: dict) -> dict[str, dict[str, Any]]:
    t0 = time.perf_counter()
    if critic_net is None:
        critic_net = _fit_own_critic(r, critic_info)
    r.report.say(f"GAE(lambda={r.p.gae_lambda}) along the branches", "gae")
    with torch.no_grad():
        v_b, nv_b = critic_net(br["obs"]), critic_net(br["next_obs"])
        adv, ret = gae(br["rewards"], v_b, nv_b, br["terminated"], br["truncated"], r.p.gamma, r.p.gae_lambda)
        return {"gae": {"a": adv[0].view(r.S, r.K), "q": ret[0].view(r.S, r.K), "v": critic_net(r.visited["obs"]),
                        "env_steps": br["env_steps"], "wall_s": time.perf_counter() - t0 + br["wall_s"]}}


def _iql_dataset(r: _Run, br: dict) -> tuple[torch.Tensor, ...]:
    """The policy's transitions around the states: the collection episodes and the branches'
    live steps (obs, actions, rewards, next obs, terminated)."""
    ro = r.visited["rollout"]
    a_mask, b_mask = r.visited["alive"].reshape(-1), br["live"].reshape(-1)
    fb = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    return tuple(torch.cat([ro.flat(getattr(ro, name))[a_mask], fb(br[key])[b_mask]])
                 for name, key in (("obs", "obs"), ("actions", "actions"), ("rewards", "rewards"),
                                   ("next_obs", "next_obs"), ("terminated", "terminated")))


def _estimate_iql(r: _Run, br: dict) -> dict[str, dict[str, Any]]:
    """`iql` (min-twin Q - V) and `iql_v_gae` (GAE along the branches with IQL's V)."""
    t0 = time.perf_counter()
    p, S, K, wanted = r.p, r.S, r.K, r.p.wanted
    d_obs, d_act, d_rew, d_next, d_term = _iql_dataset(r, br)
    r.report.say(f"fitting IQL (tau={p.iql_tau}, {p.iql_steps} steps) on {int(d_obs.shape[0]):,} transitions", "iql")
    iql = fit_iql(d_obs, d_act, d_rew, d_next, d_term, gamma=p.gamma, tau=p.iql_tau, steps=p.iql_steps,
                  generator=r.gen)
    iql_fit_s = time.perf_counter() - t0
    iql_v = iql_values(iql, r.visited["obs"])
    out: dict[str, dict[str, Any]] = {}
    if "iql" in wanted:
        a_iql = iql_advantages(iql, r.obs_rep, r.cand)
        v_rep = iql_values(iql, r.obs_rep)
        out["iql"] = {"a": a_iql.view(S, K), "q": (a_iql + v_rep).view(S, K), "v": iql_v,
                      "env_steps": br["env_steps"], "wall_s": iql_fit_s + br["wall_s"],
                      "dataset_transitions": int(d_obs.shape[0]), "fit": iql.stats}
    if "iql_v_gae" in wanted:
        t0 = time.perf_counter()
        Tb, Bb = br["rewards"].shape
        v_b = iql_values(iql, br["obs"].reshape(Tb * Bb, -1)).view(Tb, Bb)
        nv_b = iql_values(iql, br["next_obs"].reshape(Tb * Bb, -1)).view(Tb, Bb)
        adv, ret = gae(br["rewards"], v_b, nv_b, br["terminated"], br["truncated"], p.gamma, p.gae_lambda)
        out["iql_v_gae"] = {"a": adv[0].view(S, K), "q": ret[0].view(S, K), "v": iql_v, "env_steps": br["env_steps"],
                            "wall_s": time.perf_counter() - t0 + iql_fit_s + br["wall_s"],
                            "dataset_transitions": int(d_obs.shape[0])}
    return out


def _estimate(r: _Run, critic_net: Critic | None, critic_info: dict) -> tuple[dict[str, dict[str, Any]], int]:
    """Step 4: each wanted estimator's {"a": [S, K], "q": [S, K] | None, "v": [S] | None, env_steps,
    wall_s, ...}, and the branches' length in steps."""
    wanted = r.p.wanted
    est: dict[str, dict[str, Any]] = {}
    if "mc1" in wanted:
        est.update(_estimate_mc1(r))
    if "mc16" in wanted or "nn_mc16" in wanted:
        est.update(_estimate_mc16(r))
    H = mc_horizon(r.p.gamma, r.p.horizon_tol)
    steps = r.episode_steps if H is None else max(1, min(H, r.episode_steps))
    if any(e in wanted for e in ("gae", "iql", "iql_v_gae")):
        br = _branches(r, steps)
        if "gae" in wanted:
            est.update(_estimate_gae(r, br, critic_net, critic_info))
        if "iql" in wanted or "iql_v_gae" in wanted:
            est.update(_estimate_iql(r, br))
    return est, steps


def _score_truth(truth: dict, gt_rollouts: int) -> tuple[dict[str, Any], torch.Tensor]:
    """Step 5, the ground truth's own row (split-half reliability, variance ratios), and the mask
    of the ranked states in the top half by the truth's spread over the actions."""
    q_gt, v_gt, noise = truth["q_sk"], truth["v"], truth["noise_var"]
    S, K = q_gt.shape
    gt_rank = (within_state_spearman(truth["q_half1"].view(S, K), truth["q_half2"].view(S, K))
               if truth["q_half2"] is not None else None)
    truth_ws = within_state_spearman(q_gt, q_gt)
    row = {
        "label": LABELS["ground_truth"].format(gt=gt_rollouts),
        "split_half_spearman": gt_rank["mean"] if gt_rank else None,
        # Spearman-Brown: the rank agreement expected between two full-size ground truths, a
        # rough ceiling for any estimator's rho against this (noisy) ground truth
        "reliability": (2 * gt_rank["mean"] / (1 + gt_rank["mean"])
                        if gt_rank and gt_rank["mean"] == gt_rank["mean"] and gt_rank["mean"] > -1 else None),
        "split_half_states": gt_rank["states"] if gt_rank else None,
        "states_ranked": truth_ws["states"], "states_constant": truth_ws["states_gt_constant"],
        "var_ratio": variance_ratio(q_gt),
        # the same with the ground truth's own MC noise (estimated from its two halves) taken out
        "var_ratio_denoised": variance_ratio(q_gt, float(noise.mean())) if noise is not None else None,
        "noise_std": float(noise.mean().sqrt()) if noise is not None else None,
        "v_mean": float(v_gt.mean()), "v_std": float(v_gt.std()), "q_mean": float(q_gt.mean()),
        "within_state_q_std": float(q_gt.std(1).mean()), "cross_state_v_std": float(v_gt.std()),
        "env_steps": truth["env_steps"], "wall_s": truth["wall_s"], "horizon": truth["horizon"],
    }
    # the ranked states where the choice matters most: top half by ground-truth spread over actions
    spread = q_gt.std(1)
    ranked = ~(q_gt == q_gt[:, :1]).all(1)
    top = ranked & (spread >= spread[ranked].median()) if bool(ranked.any()) else ranked
    row["states_top_half"] = int(top.sum())
    return row, top


def _score_estimator(name: str, e: dict[str, Any], truth: dict, top: torch.Tensor) -> dict[str, Any]:
    """Step 5 for one estimator: within-state Spearman against the truth, V's Pearson r, the
    variance ratio of its Q, the pooled Pearson r of its advantages."""
    ws = within_state_spearman(e["a"], truth["q_sk"])
    row = {"label": LABELS[name], "spearman": ws["mean"], "spearman_median": ws["median"],
           "spearman_top_half": float(ws["per_state"][top].mean()) if bool(top.any()) else None,
           "states": ws["states"], "states_est_constant": ws["states_est_constant"],
           "v_pearson": pearson(e["v"], truth["v"]) if e["v"] is not None else None,
           "var_ratio": variance_ratio(e["q"]) if e["q"] is not None else None,
           "pooled_pearson": pearson(e["a"], truth["a"]),
           "env_steps": int(e["env_steps"]), "wall_s": round(float(e["wall_s"]), 2)}
    for extra in ("dataset_pairs", "dataset_transitions", "fit_pearson", "fit"):
        if extra in e:
            row[extra] = e[extra]
    if name in SEED_REFERENCE:
        row["seed"] = SEED_REFERENCE[name]
    return row


def _result(r: _Run, truth: dict, est: dict, infos: tuple[dict, dict], steps: int, keep_data: bool) -> dict:
    """The analysis' dict (before `finish`): config, states, the ground truth's and each estimator's rows."""
    p, v = r.p, r.visited
    policy_info, critic_info = infos
    truth_row, top = _score_truth(truth, p.gt_rollouts)
    result: dict[str, Any] = {
        "analysis": "ranking", "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "env_id": p.env_id,
        "policy": policy_info, "critic": critic_info, "config": p.config(steps),
        "states": {"time_steps": v["t"].tolist(), "visited_pairs": int(v["alive"].sum()),
                   "collection_success_rate": v["success_rate"]},
        "ground_truth": truth_row,
        "estimators": {name: _score_estimator(name, est[name], truth, top) for name in p.wanted},
        "seed_reference": SEED_REFERENCE,
        "wall_s": round(r.report.elapsed(), 2),
    }
    if critic_info.get("gamma") not in (None, p.gamma):
        result["warnings"] = [f"critic {critic_info['spec']} was fitted with gamma={critic_info['gamma']}, "
                              f"the analysis uses gamma={p.gamma}"]
    if keep_data:
        result["data"] = {"q_gt": truth["q_sk"], **{f"a_{k}": est[k]["a"] for k in p.wanted}, "v_gt": truth["v"]}
    return result


def run_ranking(p: RankingProtocol = RankingProtocol(), progress: Progress | None = None,
                json_out: str | Path | bool | None = None, keep_data: bool = True) -> dict:
    """Measure how well each advantage estimator ranks K candidate actions per visited state
    against Monte-Carlo ground truth (see the module docstring): the steps collect states, sample
    candidates, ground truth, estimate each method, score. Returns a JSON-safe dict.

    `json_out`: a path, None = `default_json_path()`, False = do not write. `keep_data`: the
    result's `data` holds the [S, K] truth and estimates. Raises `CheckpointError`, `EnvError` or
    `AnalysisError` (one line each) on unusable input.
    """
    configure_threads()  # auto: the idle cores (its MC loops re-decide through runtime.tick)
    report = Reporter(progress)
    p.check()
    check_env_id(p.env_id)
    make = env_factory(p.env_id)
    collect_env = make(p.num_states, p.seed)
    rollout_envs = RolloutEnvCache(lambda n: make(n, p.seed + 17))
    try:
        actor, policy_info = _load_policy(p.policy, collect_env, p.seed)
        critic_net, critic_info = (_load_critic(p.critic, collect_env) if "gae" in p.wanted
                                   else (None, {"spec": str(p.critic), "note": "not used (no gae estimator)"}))
        r = _Run(p, torch.Generator().manual_seed(p.seed), make, rollout_envs, actor, report,
                 collect_env.max_episode_steps)
        report.say(f"collecting {p.num_states} episodes of the policy with snapshots", "collect")
        r.visited = collect_states(collect_env, actor, p.num_states, p.seed, r.gen)
        _sample_candidates(r)
        truth = _ground_truth(r)
        est, steps = _estimate(r, critic_net, critic_info)
        report.say("scoring", "score")
        result = finish(_result(r, truth, est, (policy_info, critic_info), steps, keep_data), json_out)
        report.say(f"done in {report.elapsed():.1f}s", "done")
        return result
    finally:
        collect_env.close()
        rollout_envs.close()
