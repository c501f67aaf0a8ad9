"""The issue-22 estimators as rows of `analyze ranking --protocol seed` (engine.analysis.ranking_seed).

The seed's open question: can a critic trained from offline data alone rank actions like the
oracle? Each estimator here is fitted on exactly the transitions the protocol's IQL is fitted on
(the training episodes, the evaluation episodes and one branch per (state, candidate)), with
each transition's target its discounted return-to-go along its own trajectory (no bootstrapping),
and the same gradient-step budget as IQL (`iql_max_steps`):

- `sarsa`: Q(s, a) and V(s) regressed by MSE on the returns (`engine.algos.sarsa.fit_sarsa_mc`,
  the seed repository's RL/sarsa_finetune.py recipe); the row is Q - V. The seed's other
  definition, IQL at tau 0.5 (`fit_sarsa_td`), is the protocol's existing `iql` / `iql-ours` rows.
- `two-stage`: V on the returns first, then a residual net A(s, a) on returns - V(s)
  (`engine.algos.two_stage`); the row is A.
- `rank-q`: a net f(s, a) trained with the pairwise logistic ranking loss (`engine.algos.rank_q`)
  on two sources of within-state pairs: (1) the K candidate branches of each evaluated state
  (same snapshot, K different first actions, one rollout's return each: the dataset's only exact
  multi-action states), (2) each transition's `rank_q_neighbours` nearest transitions in
  standardised observation space from other trajectories. `rank-q-nn` uses source (2) only: the
  signal plain trajectory data (one action per state) offers.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..algos.rank_q import fit_rank_q, group_pairs, neighbour_pairs, rank_q_advantages
from ..algos.sarsa import fit_sarsa_mc, sarsa_advantages
from ..algos.two_stage import fit_two_stage, two_stage_advantages

__all__ = ["BEYOND_ROWS", "fit_beyond", "beyond_rows"]

BEYOND_ROWS = ("sarsa", "two-stage", "rank-q", "rank-q-nn")


def fit_beyond(obs: torch.Tensor, act: torch.Tensor, returns: torch.Tensor, traj: torch.Tensor,
               group: torch.Tensor, *, steps: int, neighbours: int, gen: torch.Generator,
               say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Fit every BEYOND_ROWS estimator on flat transitions: obs [N, o], act [N, a], returns [N] (the
    discounted return-to-go), traj [N] (trajectory id: never a neighbour pair within one), group [N]
    (the evaluated state of a candidate branch's first step, -1 elsewhere). Returns {"models":
    {row: fitted result}, "info": {row: stats}}."""
    models: dict[str, Any] = {}
    say(f"sarsa (Q and V by MSE on MC returns) on {returns.numel():,} transitions, {steps} steps each")
    models["sarsa"] = fit_sarsa_mc(obs, act, returns, steps=steps, generator=gen)
    say(f"two-stage (V, then A on returns - V), {steps} steps each")
    models["two-stage"] = fit_two_stage(obs, act, returns, steps=steps, generator=gen)
    first = torch.nonzero(group >= 0).view(-1)
    gi, gj = group_pairs(group[first])
    gi, gj = first[gi], first[gj]
    ni, nj = neighbour_pairs(obs, neighbours, exclude=traj) if neighbours > 0 else (gi[:0], gj[:0])
    say(f"rank-q on {gi.numel():,} same-state candidate pairs + {ni.numel():,} neighbour pairs, {steps} steps")
    models["rank-q"] = fit_rank_q(obs, act, returns, (torch.cat([gi, ni]), torch.cat([gj, nj])), steps=steps,
                                  generator=gen)
    models["rank-q-nn"] = fit_rank_q(obs, act, returns, (ni, nj), steps=steps, generator=gen)
    info = {k: dict(m.stats) for k, m in models.items()}
    info["rank-q"].update(candidate_pairs=int(gi.numel()), neighbour_pairs=int(ni.numel()),
                          candidate_pairs_untied=int(((returns[gi] - returns[gj]).abs() > 1e-6).sum()))
    info["rank-q-nn"].update(neighbour_pairs=int(ni.numel()))
    return {"models": models, "info": info}


def beyond_rows(fits: dict[str, Any], obs: torch.Tensor, cand: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each fitted estimator's advantages of the candidates: row -> [S, K]."""
    S, K, A = cand.shape
    s, a = obs.repeat_interleave(K, 0), cand.reshape(S * K, A)
    m = fits["models"]
    return {"sarsa": sarsa_advantages(m["sarsa"], s, a).view(S, K),
            "two-stage": two_stage_advantages(m["two-stage"], s, a).view(S, K),
            "rank-q": rank_q_advantages(m["rank-q"], s, a).view(S, K),
            "rank-q-nn": rank_q_advantages(m["rank-q-nn"], s, a).view(S, K)}
