"""`playground analyze ranking`: can an advantage estimator rank the actions of one state?

The seed's known issues 8 and 9 (finding 5): IQL's Q(s, a) - V(s) ranks the candidate actions
of a state no better than chance (Spearman rho 0.01 against MC ground truth) while its V(s) is
good (r = 0.96), because Q's variance across states is ~500x its variance across the actions of
one state; regressing advantages through a network destroys the ranking the same way
(0.93 -> 0.02); GAE(lambda = 0.95) along real trajectories keeps it, even with IQL's V (0.93).
`run_ranking` measures all of that on one policy, in one process, everything batched:

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
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .. import checkpoints as ck
from ..algos.gae import gae
from ..algos.mc import RolloutEnvCache, mc_estimate, mc_horizon
from ..config.schema import resolved_control_mode
from ..envs import BatchedEnv, EnvError, EnvState, check_env_id, make_env
from ..errors import UserError
from .. import settings
from ..nets import Actor, Critic

__all__ = ["AnalysisError", "ESTIMATORS", "LABELS", "SEED_REFERENCE", "average_ranks", "spearman",
           "within_state_spearman", "variance_ratio", "pearson", "ground_truth_q", "branch_rollouts",
           "run_ranking", "default_json_path", "write_json"]

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


# --------------------------------------------------------------------------- the analysis

def _check_sizes(num_states: int, num_actions: int, gt_rollouts: int, gamma: float, iql_steps: int) -> None:
    if num_states < 2:
        raise AnalysisError(f"num_states must be >= 2 (variances and correlations over states), got {num_states}")
    if num_actions < 2:
        raise AnalysisError(f"num_actions must be >= 2 (a ranking needs two candidates), got {num_actions}")
    if gt_rollouts < 1:
        raise AnalysisError(f"gt_rollouts must be >= 1, got {gt_rollouts}")
    if not 0.0 < gamma <= 1.0:
        raise AnalysisError(f"gamma must be in (0, 1], got {gamma}")
    if iql_steps < 1:
        raise AnalysisError(f"iql_steps must be >= 1, got {iql_steps}")


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


def run_ranking(
    env_id: str = "pickcube-lite",
    *,
    policy: Any = "start",
    critic: Any = "critic-expert",
    num_states: int = 64,
    num_actions: int = 8,
    gt_rollouts: int = 128,
    gamma: float = 0.8,
    seed: int = 0,
    iql_steps: int = 10_000,
    iql_tau: float = 0.7,
    gae_lambda: float = 0.95,
    regress_epochs: int = 20,
    regress_pairs: int = 4096,
    critic_episodes: int = 256,
    critic_epochs: int = 20,
    horizon_tol: float = 1e-4,
    max_batch: int = 65536,
    json_out: str | Path | bool | None = None,
    keep_data: bool = True,
    estimators: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Measure how well each advantage estimator ranks K candidate actions per visited state
    against Monte-Carlo ground truth (see the module docstring). Returns a JSON-safe dict.

    `policy`: role / seed name / path / 'none' / an `Actor`. `critic`: the GAE critic (role,
    path, a `Critic`), or None / 'none' to fit one on the policy's MC returns. `json_out`: a path,
    None = `default_json_path()`, False = do not write. `estimators`: a subset of `ESTIMATORS`
    to compute (default: all). Raises `CheckpointError`, `EnvError` or `AnalysisError` (one
    line each) on unusable input.
    """
    from ..runtime import configure_threads

    configure_threads()  # auto: the idle cores (its MC loops re-decide through runtime.tick)
    t_all = time.perf_counter()
    _check_sizes(num_states, num_actions, gt_rollouts, gamma, iql_steps)
    wanted = tuple(ESTIMATORS if estimators is None else estimators)
    unknown = [e for e in wanted if e not in ESTIMATORS]
    if unknown or not wanted:
        raise AnalysisError(f"unknown estimator(s) {', '.join(unknown) or '(none given)'}: "
                            f"choose from {', '.join(ESTIMATORS)}")
    wanted = tuple(e for e in ESTIMATORS if e in wanted)
    check_env_id(env_id)
    say = progress or (lambda info: None)
    timings: dict[str, float] = {}

    def phase(name: str, message: str) -> None:
        say({"phase": name, "message": message, "elapsed_s": round(time.perf_counter() - t_all, 1)})

    S, K = num_states, num_actions
    gen = torch.Generator().manual_seed(seed)
    mode = resolved_control_mode(env_id, "auto")  # the controller the ladder was trained with
    collect_env = make_env(env_id, S, seed=seed, reward_mode="sparse", autoreset=False, control_mode=mode)
    rollout_envs = RolloutEnvCache(lambda n: make_env(env_id, n, seed=seed + 17, reward_mode="sparse",
                                                      autoreset=False, control_mode=mode))
    try:
        actor, policy_info = _load_policy(policy, collect_env, seed)
        critic_net, critic_info = (_load_critic(critic, collect_env) if "gae" in wanted
                                   else (None, {"spec": str(critic), "note": "not used (no gae estimator)"}))

        def pol(o: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
            return actor.act(o, deterministic=False, generator=generator)

        # 1. visited states ------------------------------------------------------------------
        t0 = time.perf_counter()
        phase("collect", f"collecting {S} episodes of the policy with snapshots")
        from ..train.rollout import collect

        T_ep = collect_env.max_episode_steps
        ro, _ = collect(collect_env, actor, collect_env.reset(seed=seed), T_ep, generator=gen, keep_states=True)
        done = (ro.terminated | ro.truncated).long()
        alive = (done.cumsum(0) - done) == 0                                   # [T, N] inside the episode
        all_states = ro.all_states()
        flat_obs, flat_act = ro.flat(ro.obs), ro.flat(ro.actions)
        sel = _select_states(alive, S, gen)
        sel_states = all_states.select(sel)
        sel_obs = flat_obs[sel]
        sel_t = (sel // ro.num_envs)

        # 2. candidates ----------------------------------------------------------------------
        rep = torch.arange(S).repeat_interleave(K)
        obs_rep = sel_obs[rep]
        states_rep = sel_states.select(rep)
        cand = actor.act(obs_rep, deterministic=False, generator=gen)
        timings["collect"] = time.perf_counter() - t0

        # 3. ground truth --------------------------------------------------------------------
        t0 = time.perf_counter()
        phase("ground_truth", f"ground truth: {S * K * gt_rollouts:,} MC branches")
        gt = ground_truth_q(rollout_envs, states_rep, obs_rep, cand, pol, rollouts=gt_rollouts, gamma=gamma,
                            horizon_tol=horizon_tol, max_batch=max_batch, generator=gen)
        q_gt = gt["q"].view(S, K)
        v_gt = q_gt.mean(1)
        a_gt = q_gt - v_gt[:, None]
        timings["ground_truth"] = time.perf_counter() - t0

        est: dict[str, dict[str, Any]] = {}   # name -> {"a": [S,K], "q": [S,K]|None, "v": [S]|None, ...}

        # 4a. MC-1 -----------------------------------------------------------------------------
        m = S * K
        kw = dict(gamma=gamma, horizon_tol=horizon_tol, max_batch=max_batch, generator=gen)
        if "mc1" in wanted:
            t0 = time.perf_counter()
            phase("mc1", "MC-1 on the candidates")
            r1 = mc_estimate(rollout_envs, states_rep, obs_rep, cand, pol, k=1, **kw)
            est["mc1"] = {"a": r1.advantages.view(S, K), "q": r1.q.view(S, K), "v": r1.v.view(S, K).mean(1),
                          "env_steps": r1.env_steps, "wall_s": time.perf_counter() - t0}

        # 4b. MC-16 on the candidates (+ the regression dataset) -------------------------------
        if "mc16" in wanted or "nn_mc16" in wanted:
            t0 = time.perf_counter()
            n_data = 0
            states_mc, obs_mc, act_mc = states_rep, obs_rep, cand
            if "nn_mc16" in wanted:
                data_idx = alive.reshape(-1).nonzero().squeeze(1)
                if data_idx.numel() > regress_pairs:
                    data_idx = data_idx[torch.randperm(data_idx.numel(), generator=gen)[:regress_pairs]]
                n_data = int(data_idx.numel())
                states_mc = type(states_rep).cat([states_rep, all_states.select(data_idx)])
                obs_mc = torch.cat([obs_rep, flat_obs[data_idx]])
                act_mc = torch.cat([cand, flat_act[data_idx]])
            phase("mc16", f"MC-16 on the {m} candidates" + (f" and {n_data} visited pairs (regression targets)"
                                                            if n_data else ""))
            r16 = mc_estimate(rollout_envs, states_mc, obs_mc, act_mc, pol, k=16, **kw)
            mc16_wall = time.perf_counter() - t0
            if "mc16" in wanted:
                est["mc16"] = {"a": r16.advantages[:m].view(S, K), "q": r16.q[:m].view(S, K),
                               "v": r16.v[:m].view(S, K).mean(1), "wall_s": mc16_wall,
                               # the candidates' share of the branches' steps (exact when n_data = 0)
                               "env_steps": int(round(r16.env_steps * m / (m + n_data)))}

            # 4c. NN regression of the MC-16 advantages (finding 9) ----------------------------
            if "nn_mc16" in wanted:
                t0 = time.perf_counter()
                phase("nn_mc16", f"regressing MC-16 advantages through a network ({m + n_data} pairs, "
                                 f"{regress_epochs} epochs)")
                from ..algos.regress import regress_advantages

                pred = regress_advantages(obs_mc, act_mc, r16.advantages, epochs=regress_epochs, lr=3e-4,
                                          generator=gen)
                est["nn_mc16"] = {"a": pred[:m].view(S, K), "q": None, "v": None, "env_steps": r16.env_steps,
                                  "wall_s": time.perf_counter() - t0 + mc16_wall, "dataset_pairs": m + n_data,
                                  "fit_pearson": pearson(pred, r16.advantages)}

        # 4d. one branch per candidate (GAE, IQL data, IQL-V+GAE) -----------------------------
        H = mc_horizon(gamma, horizon_tol)
        steps = T_ep if H is None else max(1, min(H, T_ep))
        if any(e in wanted for e in ("gae", "iql", "iql_v_gae")):
            t0 = time.perf_counter()
            phase("branches", f"one {steps}-step branch per candidate")
            br = branch_rollouts(rollout_envs(m), states_rep, cand, pol, steps, gen)
            branch_steps = int(br["live"].sum())
            branch_wall = time.perf_counter() - t0
            fb = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
            Tb, Bb = br["rewards"].shape

        # 4e. GAE with a critic -----------------------------------------------------------------
        if "gae" in wanted:
            t0 = time.perf_counter()
            if critic_net is None:
                phase("critic", f"fitting a critic on the policy's MC returns ({critic_episodes} episodes)")
                from ..train.pretrain import fit_critic, mc_returns_dataset

                data_env = make_env(env_id, max(1, min(critic_episodes, 256)), seed=seed + 77, reward_mode="sparse",
                                    autoreset=False, control_mode=mode)
                try:
                    c_obs, c_ret = mc_returns_dataset(data_env, actor, gamma, critic_episodes, seed=seed + 1000)
                finally:
                    data_env.close()
                with torch.random.fork_rng(devices=[]):
                    critic_net, r2 = fit_critic(c_obs, c_ret, epochs=critic_epochs, seed=seed)
                critic_info.update(fitted="policy MC returns", fit_r2=r2, samples=int(c_obs.shape[0]), gamma=gamma,
                                   episodes=critic_episodes, epochs=critic_epochs)
            phase("gae", f"GAE(lambda={gae_lambda}) along the branches")
            with torch.no_grad():
                v_b, nv_b = critic_net(br["obs"]), critic_net(br["next_obs"])
                adv, ret = gae(br["rewards"], v_b, nv_b, br["terminated"], br["truncated"], gamma, gae_lambda)
                est["gae"] = {"a": adv[0].view(S, K), "q": ret[0].view(S, K), "v": critic_net(sel_obs),
                              "env_steps": branch_steps, "wall_s": time.perf_counter() - t0 + branch_wall}

        # 4f. IQL Q - V and IQL-V + GAE -----------------------------------------------------------
        if "iql" in wanted or "iql_v_gae" in wanted:
            t0 = time.perf_counter()
            from ..algos.iql import fit_iql, iql_advantages, iql_values

            a_mask = alive.reshape(-1)
            b_mask = br["live"].reshape(-1)
            d_obs = torch.cat([flat_obs[a_mask], fb(br["obs"])[b_mask]])
            d_act = torch.cat([flat_act[a_mask], fb(br["actions"])[b_mask]])
            d_rew = torch.cat([ro.flat(ro.rewards)[a_mask], fb(br["rewards"])[b_mask]])
            d_next = torch.cat([ro.flat(ro.next_obs)[a_mask], fb(br["next_obs"])[b_mask]])
            d_term = torch.cat([ro.flat(ro.terminated)[a_mask], fb(br["terminated"])[b_mask]])
            phase("iql", f"fitting IQL (tau={iql_tau}, {iql_steps} steps) on {int(d_obs.shape[0]):,} transitions")
            iql = fit_iql(d_obs, d_act, d_rew, d_next, d_term, gamma=gamma, tau=iql_tau, steps=iql_steps,
                          generator=gen)
            iql_fit_s = time.perf_counter() - t0
            iql_v = iql_values(iql, sel_obs)
            if "iql" in wanted:
                a_iql = iql_advantages(iql, obs_rep, cand)
                v_rep = iql_values(iql, obs_rep)
                est["iql"] = {"a": a_iql.view(S, K), "q": (a_iql + v_rep).view(S, K), "v": iql_v,
                              "env_steps": branch_steps, "wall_s": iql_fit_s + branch_wall,
                              "dataset_transitions": int(d_obs.shape[0]), "fit": iql.stats}
            if "iql_v_gae" in wanted:
                t0 = time.perf_counter()
                v_b = iql_values(iql, fb(br["obs"])).view(Tb, Bb)
                nv_b = iql_values(iql, fb(br["next_obs"])).view(Tb, Bb)
                adv, ret = gae(br["rewards"], v_b, nv_b, br["terminated"], br["truncated"], gamma, gae_lambda)
                est["iql_v_gae"] = {"a": adv[0].view(S, K), "q": ret[0].view(S, K), "v": iql_v,
                                    "env_steps": branch_steps,
                                    "wall_s": time.perf_counter() - t0 + iql_fit_s + branch_wall,
                                    "dataset_transitions": int(d_obs.shape[0])}

        # 5. scores --------------------------------------------------------------------------------
        phase("score", "scoring")
        gt_rank = (within_state_spearman(gt["q_half1"].view(S, K), gt["q_half2"].view(S, K))
                   if gt["q_half2"] is not None else None)
        truth_ws = within_state_spearman(q_gt, q_gt)
        result_gt = {
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
            "var_ratio_denoised": (variance_ratio(q_gt, float(gt["noise_var"].mean()))
                                   if gt["noise_var"] is not None else None),
            "noise_std": float(gt["noise_var"].mean().sqrt()) if gt["noise_var"] is not None else None,
            "v_mean": float(v_gt.mean()), "v_std": float(v_gt.std()), "q_mean": float(q_gt.mean()),
            "within_state_q_std": float(q_gt.std(1).mean()), "cross_state_v_std": float(v_gt.std()),
            "env_steps": gt["env_steps"], "wall_s": timings["ground_truth"], "horizon": gt["horizon"],
        }
        # the ranked states where the choice matters most: top half by ground-truth spread over actions
        spread = q_gt.std(1)
        ranked = ~(q_gt == q_gt[:, :1]).all(1)
        top = ranked & (spread >= spread[ranked].median()) if bool(ranked.any()) else ranked
        result_gt["states_top_half"] = int(top.sum())
        scores: dict[str, dict[str, Any]] = {}
        for name in wanted:
            e = est[name]
            ws = within_state_spearman(e["a"], q_gt)
            row = {"label": LABELS[name], "spearman": ws["mean"], "spearman_median": ws["median"],
                   "spearman_top_half": float(ws["per_state"][top].mean()) if bool(top.any()) else None,
                   "states": ws["states"], "states_est_constant": ws["states_est_constant"],
                   "v_pearson": pearson(e["v"], v_gt) if e["v"] is not None else None,
                   "var_ratio": variance_ratio(e["q"]) if e["q"] is not None else None,
                   "pooled_pearson": pearson(e["a"], a_gt),
                   "env_steps": int(e["env_steps"]), "wall_s": round(float(e["wall_s"]), 2)}
            for extra in ("dataset_pairs", "dataset_transitions", "fit_pearson", "fit"):
                if extra in e:
                    row[extra] = e[extra]
            if name in SEED_REFERENCE:
                row["seed"] = SEED_REFERENCE[name]
            scores[name] = row

        result: dict[str, Any] = {
            "analysis": "ranking",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "env_id": env_id,
            "policy": policy_info,
            "critic": critic_info,
            "config": {"num_states": S, "num_actions": K, "gt_rollouts": gt_rollouts, "gamma": gamma, "seed": seed,
                       "iql_steps": iql_steps, "iql_tau": iql_tau, "gae_lambda": gae_lambda,
                       "regress_epochs": regress_epochs, "regress_pairs": regress_pairs,
                       "critic_episodes": critic_episodes, "critic_epochs": critic_epochs,
                       "horizon_tol": horizon_tol, "branch_steps": steps, "estimators": list(wanted)},
            "states": {"time_steps": sel_t.tolist(), "visited_pairs": int(alive.sum()),
                       "collection_success_rate": float(ro.terminated.any(0).float().mean())},
            "ground_truth": result_gt,
            "estimators": scores,
            "seed_reference": SEED_REFERENCE,
            "wall_s": round(time.perf_counter() - t_all, 2),
        }
        if critic_info.get("gamma") not in (None, gamma):
            result["warnings"] = [f"critic {critic_info['spec']} was fitted with gamma={critic_info['gamma']}, "
                                  f"the analysis uses gamma={gamma}"]
        if keep_data:
            result["data"] = {"q_gt": q_gt, **{f"a_{k}": est[k]["a"] for k in wanted},
                              "v_gt": v_gt}
        result = _finite_or_none(result)
        if json_out is not False:
            path = write_json(result, None if json_out in (None, True) else json_out)
            result["json_path"] = str(path)
        phase("done", f"done in {time.perf_counter() - t_all:.1f}s")
        return result
    finally:
        collect_env.close()
        rollout_envs.close()
