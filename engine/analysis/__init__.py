"""Analyses that measure the seed's findings directly, outside any training run.

- `ranking.py`: `playground analyze ranking`. Can an advantage estimator rank the candidate
  actions of ONE state the way the true Q^pi does? Monte-Carlo ground truth from env snapshots,
  then GAE, MC-1, MC-16, IQL Q-V, NN-regressed advantages and IQL-V+GAE scored by within-state
  Spearman correlation, V quality and the cross-state / within-state variance ratio (the seed's
  known issues 8 and 9, finding 5).
- `reproduce.py`: `playground reproduce`, the seed's "Best Configurations" table re-run over seeds.
"""
