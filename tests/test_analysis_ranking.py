"""`playground analyze ranking` (engine.analysis.ranking): the statistics, the ground truth, a
small end-to-end run, and the CLI's handling of bad input. CI-sized: a tiny scripted policy."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from engine.analysis.ranking import (ESTIMATORS, RankingProtocol, average_ranks, ground_truth_q, run_ranking, spearman,
                                     variance_ratio, within_state_spearman)
from engine.algos.mc import RolloutEnvCache
from engine.envs import make_env
from engine.nets import Actor


class ScriptedMean(nn.Module):
    """A hand-made pickcube-lite controller (privileged state): hover over the cube, descend,
    close, carry the cube to the goal. Solves the task deterministically in ~10-30 steps."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        tcp, finger, grasped = obs[:, 0:3], obs[:, 3], obs[:, 8] > 0.5
        goal, obj = obs[:, 9:12], obs[:, 12:15]
        xy = torch.linalg.vector_norm(obj[:, :2] - tcp[:, :2], dim=1)
        hover = obj.clone()
        hover[:, 2] += 0.05
        above = torch.where((xy > 0.012)[:, None], hover, obj)
        target = torch.where(grasped[:, None], tcp + (goal - obj), above)
        move = ((target - tcp) * 20.0).clamp(-1, 1)
        near = torch.linalg.vector_norm(obj - tcp, dim=1) < 0.008
        close = grasped | (near & (finger > 0.01))
        grip = torch.where(close, -1.0, 1.0).to(obs.dtype)
        return torch.cat([move, grip[:, None]], 1)


def scripted_actor(logstd: float = -1.5) -> Actor:
    """Stochastic with the seed's start log-std (-1.5): SR ~0.9 sampling, 1.0 deterministic."""
    actor = Actor(21, 4, logstd_init=logstd)
    actor.mean = ScriptedMean()
    return actor


# --------------------------------------------------------------------------- statistics

def test_average_ranks_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert average_ranks(torch.tensor([[5.0, 5.0, 5.0]])).tolist() == [[2.0, 2.0, 2.0]]


def test_spearman_known_cases():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x * 10 + 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, x.pow(3)) == pytest.approx(1.0)           # monotone, not linear
    # ties: ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4] -> 4.5 / sqrt(4.5 * 5)
    assert spearman(torch.tensor([1.0, 2.0, 2.0, 3.0]), x) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman(torch.zeros(4), x))                # constant: undefined


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a = torch.randint(0, 4, (9,), generator=g).float()        # many ties
        b = torch.randint(0, 5, (9,), generator=g).float()
        expected = stats.spearmanr(a.numpy(), b.numpy()).statistic
        got = spearman(a, b)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-9)


def test_within_state_spearman_rules():
    truth = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    est = torch.tensor([[1.0, 2.0, 3.0], [5.0, 1.0, 2.0], [1.0, 2.0, 3.0], [7.0, 7.0, 7.0]])
    ws = within_state_spearman(est, truth)
    # state 1 (constant truth) is left out; state 3 (constant estimate) scores 0
    assert ws["states"] == 3 and ws["states_gt_constant"] == 1 and ws["states_est_constant"] == 1
    assert ws["mean"] == pytest.approx((1.0 - 1.0 + 0.0) / 3)


def test_variance_ratio():
    q = torch.tensor([[0.0, 2.0], [10.0, 12.0]])   # state means 1, 11 (var 25); within var 1 each
    assert variance_ratio(q) == pytest.approx(25.0)
    assert variance_ratio(torch.tensor([[1.0, 1.0], [2.0, 2.0]])) == math.inf


def test_variance_ratio_denoised_recovers_the_signal():
    g = torch.Generator().manual_seed(0)
    S, K = 4000, 8
    true = torch.randn(S, 1, generator=g) * 3 + torch.randn(S, K, generator=g) * 0.5    # ratio ~ 9 / 0.25 * 8/7
    noisy = true + torch.randn(S, K, generator=g)                                      # noise var 1
    assert variance_ratio(noisy) < 0.3 * variance_ratio(true)
    assert variance_ratio(noisy, 1.0) == pytest.approx(variance_ratio(true), rel=0.15)
    assert math.isnan(variance_ratio(noisy, 100.0))                                   # noise hides everything


# --------------------------------------------------------------------------- ground truth

def test_ground_truth_of_a_deterministic_policy_is_one_rollout():
    actor = scripted_actor()
    policy = lambda o, generator=None: actor.act(o, deterministic=True)  # noqa: E731
    n, gamma = 6, 0.8
    env = make_env("pickcube-lite", n, seed=3, reward_mode="sparse", autoreset=False)
    obs = env.reset(seed=3)
    for _ in range(4):
        obs = env.step(policy(obs)).obs
    states = env.snapshot()
    g = torch.Generator().manual_seed(1)
    first = torch.rand(n, 4, generator=g) * 2 - 1
    cache = RolloutEnvCache(lambda m: make_env("pickcube-lite", m, seed=11, reward_mode="sparse", autoreset=False))
    gt = ground_truth_q(cache, states, obs, first, policy, rollouts=8, gamma=gamma, horizon_tol=0.0)
    cache.close()

    # one plain rollout per state: the first action, then the policy, to the episode's end
    env2 = make_env("pickcube-lite", n, seed=99, reward_mode="sparse", autoreset=False)
    o = env2.restore(states)
    a, ret, live, disc = first, torch.zeros(n), torch.ones(n, dtype=torch.bool), 1.0
    for _ in range(env2.max_episode_steps):
        res = env2.step(a)
        ret += disc * res.reward * live
        live &= ~(res.terminated | res.truncated)
        disc *= gamma
        if not live.any():
            break
        a = policy(res.obs)
    assert (ret > 0).any(), "the scripted policy should succeed from some of these states"
    assert torch.allclose(gt["q"], ret, atol=1e-6)
    assert torch.equal(gt["q_half1"], gt["q_half2"])


# --------------------------------------------------------------------------- end to end

def test_run_ranking_small_has_every_estimator_and_writes_json(tmp_path):
    out = tmp_path / "deep" / "ranking.json"
    r = run_ranking(RankingProtocol(policy=scripted_actor(), critic=None, num_states=6, num_actions=4, gt_rollouts=16,
                                    seed=0, iql_steps=50, critic_episodes=16, critic_epochs=2, regress_pairs=64,
                                    regress_epochs=2), json_out=out)
    assert set(r["estimators"]) == set(ESTIMATORS)
    for name, row in r["estimators"].items():
        assert math.isfinite(row["spearman"]) and -1.0 <= row["spearman"] <= 1.0, name
        assert math.isfinite(row["pooled_pearson"]), name
        assert row["env_steps"] > 0, name
        if name == "nn_mc16":
            assert row["v_pearson"] is None and row["var_ratio"] is None
        else:
            assert math.isfinite(row["v_pearson"]), name
            assert math.isfinite(row["var_ratio"]) and row["var_ratio"] >= 0, name
    gt = r["ground_truth"]
    assert gt["states_ranked"] > 0 and math.isfinite(gt["var_ratio"]) and math.isfinite(gt["split_half_spearman"])
    assert gt["noise_std"] > 0
    assert len(r["data"]["q_gt"]) == 6 and len(r["data"]["q_gt"][0]) == 4
    assert r["json_path"] == str(out) and out.is_file()
    on_disk = json.loads(out.read_text())
    assert on_disk["estimators"].keys() == r["estimators"].keys()
    assert on_disk["config"]["num_states"] == 6


def test_fresh_policy_runs_and_default_json_path(tmp_path, monkeypatch):
    """'none' (a fresh net) never succeeds: everything still runs, rho is simply undefined."""
    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(tmp_path))
    r = run_ranking(RankingProtocol(policy="none", critic="none", num_states=3, num_actions=2, gt_rollouts=2,
                                    iql_steps=5, estimators=("mc1", "gae"), critic_episodes=4, critic_epochs=1))
    assert list(r["estimators"]) == ["gae", "mc1"]
    assert r["estimators"]["mc1"]["spearman"] is None       # no state has a non-constant ground truth
    files = list((tmp_path / "analysis").glob("ranking-*.json"))
    assert len(files) == 1 and str(files[0]) == r["json_path"]


def test_mc16_ranks_better_than_mc1():
    actor = scripted_actor()
    mc1, mc16 = [], []
    for seed in range(3):
        r = run_ranking(RankingProtocol(policy=actor, critic=None, num_states=32, num_actions=6, gt_rollouts=64,
                                        seed=seed, estimators=("mc1", "mc16")), json_out=False)
        mc1.append(r["estimators"]["mc1"]["spearman"])
        mc16.append(r["estimators"]["mc16"]["spearman"])
    assert sum(mc16) / 3 > sum(mc1) / 3 + 0.03, (mc1, mc16)


# --------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("args, needle", [
    (["ranking", "--env", "nope"], "unknown env id"),
    (["ranking", "--policy", "start"], "no 'start' checkpoint"),
    (["ranking", "--policy", "none", "--critic", "no-such-critic"], "neither a role"),
    (["ranking", "--policy", "none", "--states", "1"], "num_states"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.analyze_cmd import analyze_app

    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "no-ladder"))
    res = CliRunner().invoke(analyze_app, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.output


def test_cli_runs_and_prints_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.analyze_cmd import analyze_app

    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(tmp_path))
    out = tmp_path / "r.json"
    res = CliRunner().invoke(analyze_app, ["ranking", "--policy", "none", "--critic", "none", "--states", "2",
                                           "--actions", "2", "--gt-rollouts", "2", "--iql-steps", "5",
                                           "--only", "mc1,iql", "--quick", "--json-out", str(out)])
    assert res.exit_code == 0, res.output
    assert "MC-1" in res.output and "IQL Q-V" in res.output
    assert json.loads(out.read_text())["config"]["estimators"] == ["mc1", "iql"]


# --------------------------------------------------------------------------- the seed's protocol

class _Const(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.full(obs.shape[:-1], self.value)


def test_seed_branch_estimates_by_hand():
    from engine.analysis.ranking_seed import branch_estimates

    gamma, lam = 0.5, 0.5
    # one branch, success at t=2 with reward 1; the step after it lies outside the branch
    br = {"obs": torch.zeros(4, 1, 2), "next_obs": torch.zeros(4, 1, 2),
          "rewards": torch.tensor([[0.0], [0.0], [1.0], [0.0]]),
          "terminated": torch.tensor([[False], [False], [True], [False]]),
          "live": torch.tensor([[True], [True], [True], [False]])}
    est = branch_estimates(br, {"gae": _Const(0.0), "other": _Const(0.2)}, "gae", (1, 2, 5), gamma, lam)
    assert est["mc"].item() == pytest.approx(0.25)
    assert est["gae"].item() == pytest.approx(0.25 * 0.25)            # (gamma lam)^2 with V = 0
    assert est["td1"].item() == 0.0 and est["td2"].item() == 0.0
    assert est["td5"].item() == pytest.approx(0.25)                   # reaches the success: MC - V
    # V = 0.2 everywhere: delta_0 = delta_1 = 0.5*0.2 - 0.2 = -0.1, delta_2 = 1 - 0.2 (no value after success)
    assert est["other"].item() == pytest.approx(-0.1 - 0.25 * 0.1 + 0.0625 * 0.8)
    assert "td1" in est and set(est) == {"mc", "gae", "other", "td1", "td2", "td5"}


def test_seed_score_rho_and_top1():
    from engine.analysis.ranking_seed import score

    truth = torch.tensor([[0.1, 0.5, 0.3], [0.2, 0.2, 0.2], [0.9, 0.1, 0.4]])   # state 2 constant: left out
    same = score(truth * 3 + 1, truth)
    assert same["rho"] == pytest.approx(1.0) and same["top1"] == 1.0 and same["states"] == 2
    rev = score(-truth, truth)
    assert rev["rho"] == pytest.approx(-1.0) and rev["top1"] == 0.0


def test_seed_protocol_tiny_run_has_the_contract_keys(tmp_path):
    from engine.analysis.ranking_seed import SeedProtocol, run_seed_ranking

    p = SeedProtocol(policy=scripted_actor(-1.0), states=4, K=3, M=2, eval_episodes=4, train_episodes=4,
                     iql_taus=(0.5,), iql_max_steps=4, critic_epochs=1, nn_epochs=1, m_scaling=True,
                     network_sizes=True, seed=3)
    out = tmp_path / "seed.json"
    r = run_seed_ranking(p, json_out=out)
    assert r["protocol"] == "seed" and (r["states"], r["K"], r["M"]) == (4, 3, 2) and r["rollouts"] == 16
    for name in ("mc", "gae", "td1", "td5", "td20", "td50", "iql", "iql-v-gae", "nn-gae", "nn-mc", "iql-ours",
                 "mc-indep", "gae-indep"):
        assert name in r["rho"] and name in r["top1"], name
    if r["states_ranked"]:
        assert r["rho"]["mc"] == pytest.approx(1.0) and r["top1"]["mc"] == 1.0       # the truth itself
        assert r["m_scaling"]["16"]["mc"] == pytest.approx(1.0)
    assert set(r["m_scaling"]) == {"1", "2", "4", "8", "16"}
    assert set(r["network_sizes"]) == {"256", "512", "1024"}
    assert set(r["network_sizes"]["1024"]) == {"gae", "iql", "iql-v-gae", "nn-gae"}
    from engine.cli.ranking_view import print_seed_ranking
    from rich.console import Console

    console = Console(record=True, width=160)
    print_seed_ranking(r, console)
    text = console.export_text()
    assert "seed protocol" in text and "16-rollout MC truth" in text and "hidden width" in text
    assert r["seed"]["rho"]["gae"] == 0.931 and r["seed"]["rho"]["iql"] == 0.010
    assert 0.0 <= r["diagnostics"]["pairs_all_rollouts_equal"] <= 1.0
    assert json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))["rho"].keys() == r["rho"].keys()


def test_seed_protocol_has_the_issue22_rows_with_finite_values(tmp_path):
    """sarsa, two-stage, rank-q and rank-q-nn are fitted on IQL's dataset and scored like every row."""
    from engine.analysis.ranking_seed import SeedProtocol, run_seed_ranking

    p = SeedProtocol(policy=scripted_actor(-1.0), states=6, K=3, M=2, eval_episodes=4, train_episodes=4,
                     iql_taus=(0.5,), iql_max_steps=5, critic_epochs=1, nn_epochs=1, independent=False,
                     rank_q_neighbours=2, seed=1)
    r = run_seed_ranking(p, json_out=tmp_path / "seed.json")
    data = json.loads((tmp_path / "seed.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert r["states_ranked"] > 0
    for name in ("sarsa", "two-stage", "rank-q", "rank-q-nn"):
        assert math.isfinite(data["rho"][name]) and -1.0 <= data["rho"][name] <= 1.0, name
        assert 0.0 <= data["top1"][name] <= 1.0, name
    fits = data["fits"]["beyond"]
    assert fits["rank-q"]["candidate_pairs"] == 6 * 3 and fits["rank-q-nn"]["neighbour_pairs"] > 0
    assert fits["rank-q"]["pairs"] <= fits["rank-q"]["candidate_pairs"] + fits["rank-q"]["neighbour_pairs"]
    assert fits["sarsa"]["target"] == "mc" and "residual_std" in fits["two-stage"]


def test_seed_protocol_rejects_negative_rank_q_neighbours():
    from engine.analysis.ranking import AnalysisError
    from engine.analysis.ranking_seed import SeedProtocol

    with pytest.raises(AnalysisError, match="rank_q_neighbours must be >= 0"):
        SeedProtocol(rank_q_neighbours=-1).check()


@pytest.mark.parametrize("args, needle", [
    (["ranking", "--protocol", "bogus"], "--protocol must be one of"),
    (["ranking", "--protocol", "seed", "--td-n", "1,x"], "--td-n"),
    (["ranking", "--protocol", "seed", "--policy", "none", "-M", "0"], "M must be >= 1"),
    (["ranking", "--protocol", "seed"], "no 'optimal' checkpoint"),
])
def test_cli_seed_protocol_bad_input_is_one_line_exit_2(args, needle, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.analyze_cmd import analyze_app

    monkeypatch.setenv("PLAYGROUND_CHECKPOINTS_DIR", str(tmp_path / "no-ladder"))
    res = CliRunner().invoke(analyze_app, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.output


def test_cli_seed_protocol_json_is_one_object(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.analyze_cmd import analyze_app

    monkeypatch.setenv("PLAYGROUND_RUNS_DIR", str(tmp_path))
    out = tmp_path / "seed.json"
    res = CliRunner().invoke(analyze_app, ["ranking", "--protocol", "seed", "--policy", "none", "--states", "3",
                                           "-K", "2", "-M", "1", "--td-n", "1,5,20", "--iql-steps", "3", "--quick",
                                           "--json", "--json-out", str(out)])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["protocol"] == "seed" and (obj["states"], obj["K"], obj["M"]) == (3, 2, 1)
    for name in ("mc", "gae", "td1", "td5", "td20", "iql", "iql-v-gae", "nn-gae"):
        assert name in obj["rho"] and name in obj["top1"]
    assert json.loads(out.read_text())["rho"].keys() == obj["rho"].keys()
