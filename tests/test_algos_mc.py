"""MC-k re-rollout estimator on a tiny deterministic chain env whose returns can be hand-computed."""
from __future__ import annotations

import math
from typing import Sequence

import pytest
import torch

from engine.algos.mc import MCResult, RolloutEnvCache, mc_estimate, mc_horizon
from engine.envs.base import BatchedEnv, EnvState, StepResult




# --------------------------------------------------------------------------- the chain env


class ChainState(EnvState):
    def __init__(self, pos: torch.Tensor, elapsed: torch.Tensor):
        self.pos, self.elapsed = pos, elapsed

    def __len__(self) -> int:
        return self.pos.shape[0]

    def select(self, index: torch.Tensor | Sequence[int]) -> "ChainState":
        index = torch.as_tensor(index, dtype=torch.long)
        return ChainState(self.pos[index].clone(), self.elapsed[index].clone())

    @classmethod
    def cat(cls, states: Sequence["ChainState"]) -> "ChainState":
        return cls(torch.cat([s.pos for s in states]), torch.cat([s.elapsed for s in states]))


class ChainEnv(BatchedEnv):
    """1-D chain: pos += clip(action, -1, 1); success (sparse reward 1, terminated) once pos >= goal;
    truncated on the step where elapsed reaches max_episode_steps. autoreset=False only.
    obs = [pos, elapsed]."""

    env_id = "test-chain"
    obs_dim = 2
    act_dim = 1
    reward_mode = "sparse"
    device = torch.device("cpu")

    def __init__(self, num_envs: int, goal: float = 5.0, max_episode_steps: int = 10):
        self.num_envs, self.goal, self.max_episode_steps = num_envs, goal, max_episode_steps
        self.pos = torch.zeros(num_envs)
        self.elapsed = torch.zeros(num_envs, dtype=torch.long)
        self.restore_calls = 0
        self.step_calls = 0

    def _obs(self) -> torch.Tensor:
        return torch.stack([self.pos, self.elapsed.float()], -1)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.pos.zero_()
        self.elapsed.zero_()
        return self._obs()

    def step(self, action: torch.Tensor) -> StepResult:
        assert action.shape == (self.num_envs, 1)
        self.step_calls += 1
        self.pos = self.pos + action[:, 0].clamp(-1, 1)
        self.elapsed = self.elapsed + 1
        success = self.pos >= self.goal - 1e-6
        truncated = self.elapsed >= self.max_episode_steps
        obs = self._obs()
        return StepResult(obs=obs, reward=success.float(), terminated=success.clone(), truncated=truncated,
                          success=success, final_obs=obs)

    def snapshot(self) -> ChainState:
        return ChainState(self.pos.clone(), self.elapsed.clone())

    def restore(self, state: ChainState) -> torch.Tensor:
        assert len(state) == self.num_envs
        self.restore_calls += 1
        self.pos, self.elapsed = state.pos.clone(), state.elapsed.clone()
        return self._obs()

    def elapsed_steps(self) -> torch.Tensor:
        return self.elapsed.clone()


class Factory:
    """make_rollout_env that records every env it builds."""

    def __init__(self, **kw):
        self.kw, self.built = kw, []

    def __call__(self, n: int) -> ChainEnv:
        env = ChainEnv(n, **self.kw)
        self.built.append(env)
        return env


def right_policy(obs: torch.Tensor) -> torch.Tensor:
    """Deterministic: always +1. Asserts it is never asked to act in an ended branch."""
    assert (obs[:, 0] < 5.0 - 1e-6).all(), "policy called on a branch that already succeeded"
    return torch.ones(obs.shape[0], 1)


def coin_policy(obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic: +1 with probability 1/2, else stay."""
    return torch.bernoulli(torch.full((obs.shape[0], 1), 0.5), generator=generator)


def states_of(pos, elapsed):
    return ChainState(torch.tensor(pos, dtype=torch.float32), torch.tensor(elapsed, dtype=torch.long))


def obs_of(st: ChainState) -> torch.Tensor:
    return torch.stack([st.pos, st.elapsed.float()], -1)


# Hand-computed case (goal 5, max 10 steps, policy always +1, gamma g):
#   state (pos, elapsed), first action -> Q steps-to-goal / V steps-to-goal
#   s0 (0, 0), a=+1 : Q 5 steps -> g^4 ; V 5 steps -> g^4
#   s1 (2, 0), a= 0 : Q 4 steps -> g^3 ; V 3 steps -> g^2
#   s2 (4.5,0),a=.5 : Q 1 step  -> 1   ; V 1 step  -> 1
#   s3 (0, 8), a=+1 : needs 5 steps, 2 left -> Q 0, V 0 (truncated)
#   s4 (3, 8), a=+1 : Q 2 steps (succeeds on the truncation step) -> g ; V -> g
#   s5 (3, 8), a=-1 : Q 0 (pos 2 -> 3, truncated) ; V g
POS = [0.0, 2.0, 4.5, 0.0, 3.0, 3.0]
ELAPSED = [0, 0, 0, 8, 8, 8]
ACTIONS = torch.tensor([[1.0], [0.0], [0.5], [1.0], [1.0], [-1.0]])
G = 0.8
Q_HAND = torch.tensor([G ** 4, G ** 3, 1.0, 0.0, G, 0.0])
V_HAND = torch.tensor([G ** 4, G ** 2, 1.0, 0.0, G, G])
# Live env steps per (Q branch, V branch) of each state: 5+5, 4+3, 1+1, 2+2, 2+2, 2+2.
Q_STEPS, V_STEPS = 5 + 4 + 1 + 2 + 2 + 2, 5 + 3 + 1 + 2 + 2 + 2


def run(k=1, max_batch=10_000, policy=right_policy, tol=0.0, gamma=G, compute_v=True, factory=None, gen=None,
        pos=POS, elapsed=ELAPSED, actions=ACTIONS, full_budget=False):
    """The hand-computed cases above use the snapshot's elapsed count (full_budget=False)."""
    st = states_of(pos, elapsed)
    factory = factory or Factory()
    res = mc_estimate(factory, st, obs_of(st), actions, policy, k=k, gamma=gamma, horizon_tol=tol,
                      max_batch=max_batch, generator=gen, compute_v=compute_v, full_budget=full_budget)
    return res, factory


def test_hand_computed_q_v_and_truncation():
    res, factory = run(k=1)
    assert isinstance(res, MCResult)
    torch.testing.assert_close(res.q, Q_HAND)
    torch.testing.assert_close(res.v, V_HAND)
    torch.testing.assert_close(res.advantages, Q_HAND - V_HAND)
    assert res.env_steps == Q_STEPS + V_STEPS
    # One batch of 12 envs stepped until the longest branch (5 steps) ended.
    assert res.env_steps_simulated == 12 * 5
    assert res.max_steps_run == 5 and res.chunks == 1


def test_branches_from_late_states_run_a_full_budget_by_default():
    """The seed resets the elapsed-step counter on restore: s3-s5 (elapsed 8 of 10) get 10 steps."""
    st = states_of(POS, ELAPSED)
    res = mc_estimate(Factory(), st, obs_of(st), ACTIONS, right_policy, k=1, gamma=G, horizon_tol=0.0,
                      max_batch=10_000)                                  # full_budget is the default
    # s3 (0, 8), a=+1: 5 steps -> g^4 both; s4 (3, 8), a=+1: 2 steps -> g; s5 (3, 8), a=-1: Q 4 steps -> g^3, V g
    q = torch.tensor([G ** 4, G ** 3, 1.0, G ** 4, G, G ** 3])
    v = torch.tensor([G ** 4, G ** 2, 1.0, G ** 4, G, G])
    torch.testing.assert_close(res.q, q)
    torch.testing.assert_close(res.v, v)
    assert res.max_steps_run == 5
    # A branch that cannot succeed still stops after max_episode_steps steps from the restore.
    far = states_of([-20.0], [9])
    res = mc_estimate(Factory(), far, obs_of(far), torch.tensor([[1.0]]), right_policy, k=1, gamma=G,
                      horizon_tol=0.0, max_batch=10)
    assert res.q.item() == 0.0 and res.max_steps_run == 10 and res.env_steps == 20
    # The option keeps the snapshot's count: only 1 step left.
    res = mc_estimate(Factory(), far, obs_of(far), torch.tensor([[1.0]]), right_policy, k=1, gamma=G,
                      horizon_tol=0.0, max_batch=10, full_budget=False)
    assert res.max_steps_run == 1 and res.env_steps == 2


def test_deterministic_policy_k_samples_equal_single_rollout():
    r1, _ = run(k=1)
    r8, _ = run(k=8)
    torch.testing.assert_close(r8.q, r1.q)
    torch.testing.assert_close(r8.v, r1.v)
    assert (r8.q_std == 0).all() and (r8.v_std == 0).all()
    assert r8.env_steps == 8 * r1.env_steps


def test_all_branches_in_one_restore_no_loop_over_states():
    res, factory = run(k=4)
    assert len(factory.built) == 1
    env = factory.built[0]
    assert env.num_envs == len(POS) * 2 * 4
    assert env.restore_calls == 1
    assert env.step_calls == 5


def test_chunking_bounds_batch_and_reuses_envs():
    k, max_batch = 2, 5
    res, factory = run(k=k, max_batch=max_batch)
    B = len(POS) * 2 * k                       # 24 branches -> chunks 5,5,5,5,4
    assert sorted(e.num_envs for e in factory.built) == [4, 5]   # one env per size, reused
    assert sum(e.restore_calls for e in factory.built) == math.ceil(B / max_batch) == res.chunks
    assert all(e.num_envs <= max_batch for e in factory.built)
    torch.testing.assert_close(res.q, Q_HAND)
    torch.testing.assert_close(res.v, V_HAND)
    assert res.env_steps == k * (Q_STEPS + V_STEPS)


def test_env_cache_across_calls():
    factory = Factory()
    cache = RolloutEnvCache(factory)
    st = states_of(POS, ELAPSED)
    for _ in range(3):
        mc_estimate(cache, st, obs_of(st), ACTIONS, right_policy, k=2, gamma=G, horizon_tol=0.0, max_batch=1000)
    assert len(factory.built) == 1 and factory.built[0].restore_calls == 3
    cache.close()
    assert cache.envs == {}


def test_compute_v_false_runs_only_q_branches():
    res, factory = run(k=3, compute_v=False)
    assert res.v is None and res.advantages is None
    torch.testing.assert_close(res.q, Q_HAND)
    assert factory.built[0].num_envs == len(POS) * 3
    assert res.env_steps == 3 * Q_STEPS


def test_horizon_cut():
    assert mc_horizon(0.8, 1e-4) == 42          # 0.8^41 = 1.06e-4 >= tol > 0.8^42
    assert 0.8 ** 41 >= 1e-4 > 0.8 ** 42
    assert mc_horizon(0.8, 0.0) is None and mc_horizon(1.0, 1e-4) is None
    # gamma 0.5, tol 0.1: 0.5^3 = 0.125 >= 0.1 > 0.5^4 -> 4 steps (t = 0..3) are simulated.
    assert mc_horizon(0.5, 0.1) == 4
    res, _ = run(k=1, gamma=0.5, tol=0.1)
    q_cut = torch.tensor([0.0, 0.5 ** 3, 1.0, 0.0, 0.5, 0.0])     # s0 needs 5 steps: cut
    v_cut = torch.tensor([0.0, 0.5 ** 2, 1.0, 0.0, 0.5, 0.5])
    torch.testing.assert_close(res.q, q_cut)
    torch.testing.assert_close(res.v, v_cut)
    assert res.max_steps_run == 4 and res.horizon == 4
    # The dropped tail is within the documented bound tol / (1 - gamma).
    full, _ = run(k=1, gamma=0.5, tol=0.0)
    assert (full.q - res.q).abs().max().item() <= 0.1 / (1 - 0.5)


def exact_q(pos: float, elapsed: int, first: float, gamma: float, goal=5.0, max_steps=10, p=0.5) -> float:
    """Exact E[discounted sparse return] for the coin policy after a forced first action (DP)."""
    dist = {pos + first: 1.0}
    value, t = 0.0, 0
    while True:
        done = {x: m for x, m in dist.items() if x >= goal - 1e-6}
        value += gamma ** t * sum(done.values())
        dist = {x: m for x, m in dist.items() if x < goal - 1e-6}
        t += 1
        if elapsed + t >= max_steps or not dist:
            return value
        nxt: dict[float, float] = {}
        for x, m in dist.items():
            nxt[x + 1] = nxt.get(x + 1, 0.0) + m * p
            nxt[x] = nxt.get(x, 0.0) + m * (1 - p)
        dist = nxt


def test_stochastic_policy_converges_to_exact_expectation():
    pos, elapsed = [2.0, 2.0, 3.0], [0, 0, 5]
    actions = torch.tensor([[1.0], [0.0], [1.0]])
    k, gamma = 3000, 0.9
    res, _ = run(k=k, policy=coin_policy, gamma=gamma, pos=pos, elapsed=elapsed, actions=actions,
                 gen=torch.Generator().manual_seed(0))
    q_exact = torch.tensor([exact_q(p, e, a.item(), gamma) for p, e, a in zip(pos, elapsed, actions)])
    v_exact = torch.tensor([0.5 * exact_q(p, e, 1.0, gamma) + 0.5 * exact_q(p, e, 0.0, gamma)
                            for p, e in zip(pos, elapsed)])
    # Sampling error of a mean of k returns in [0, 1]: std <= 0.5 / sqrt(k) ~ 0.009.
    torch.testing.assert_close(res.q, q_exact, atol=0.04, rtol=0)
    torch.testing.assert_close(res.v, v_exact, atol=0.04, rtol=0)
    assert (res.q_std > 0).all()
    assert res.advantages[0] > 0 > res.advantages[1]
    assert res.env_steps < res.env_steps_simulated      # branches end at different times
    # The generator makes it reproducible.
    res2, _ = run(k=k, policy=coin_policy, gamma=gamma, pos=pos, elapsed=elapsed, actions=actions,
                  gen=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.q, res2.q)


def test_size_mismatch_raises():
    st = states_of(POS, ELAPSED)
    with pytest.raises(ValueError):
        mc_estimate(Factory(), st, obs_of(st)[:3], ACTIONS, right_policy, k=1, gamma=G, horizon_tol=0.0,
                    max_batch=10)
