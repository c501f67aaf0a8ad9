"""The benchmark commands run end to end at a tiny size (no timing assertions: speed is measured
by running them, see engine/bench/)."""
from __future__ import annotations

import math

import torch

from engine.bench import headline, mc, ppo_iter
from engine.nets import Actor, Critic


def _quiet(*_a, **_k):
    pass


def test_mc_bench_runs(capsys):
    res = mc.main(["--states", "6", "--k", "2", "--repeats", "1", "--bare-steps", "2", "--min-seconds", "0"])
    assert res["branches"] == 6 * 2 * 2
    assert res["live_steps"] > 0 and res["simulated_steps"] >= res["live_steps"]
    assert math.isfinite(res["ratio_live"]) and res["ratio_live"] > 0
    assert "ratio estimator/bare" in capsys.readouterr().out


def test_ppo_iter_bench_runs(capsys):
    res = ppo_iter.main(["--sizes", "8x4", "--repeats", "1", "--update-epochs", "1", "--num-minibatches", "2"])
    assert len(res) == 1 and res[0]["num_envs"] == 8 and res[0]["num_steps"] == 4
    assert res[0]["ref_s"] > 0 and res[0]["engine_s"] > 0
    assert set(res[0]["engine_phases"]) == {"collect", "gae", "update"}
    assert "ratio engine/reference" in capsys.readouterr().out


def test_reference_agent_starts_from_the_engine_weights():
    torch.manual_seed(0)
    actor, critic = Actor(21, 4, learn_logstd=True), Critic(21)
    agent = ppo_iter.RefAgent(21, 4).copy_from(actor, critic)
    obs = torch.randn(7, 21)
    act = torch.randn(7, 4)
    _, logp, _, value = agent.get_action_and_value(obs, act)
    torch.testing.assert_close(logp, actor.log_prob(obs, act))
    torch.testing.assert_close(value.view(-1), critic(obs))


def test_headline_bench_runs(capsys):
    argv = ["--checkpoint", "none", "--num-envs", "4", "--num-steps", "4", "--total-timesteps", "16",
            "--update-epochs", "1", "--mc-samples", "2", "--num-eval-envs", "4"]
    res = headline.main(argv)
    assert res["status"] == "done" and res["iterations"] == 1
    assert set(res["phases"]) == {"setup", "collect", "mc", "update", "eval", "other"}
    assert res["mc_estimate_s"] > 0
    quick = headline.main(argv[:6] + ["--total-timesteps", "48", "--update-epochs", "1", "--mc-samples", "2",
                                      "--num-eval-envs", "4", "--quick"])
    assert quick["iterations"] == 1 and quick["projected_full_s"] > 0
    assert "projected full run (3 iterations)" in capsys.readouterr().out


def test_proposed_value_pass_matches_the_full_one():
    from engine.envs import make_env
    from engine.train.rollout import collect

    torch.manual_seed(0)
    env = make_env("pickcube-lite", 6, seed=0, autoreset=True)
    actor, critic = Actor(env.obs_dim, env.act_dim), Critic(env.obs_dim)
    ro, _ = collect(env, actor, env.reset(seed=0), 60, generator=torch.Generator().manual_seed(0))
    assert bool(ro.truncated.any())  # episodes ended inside the window
    with torch.no_grad():
        v, nv = critic(ro.obs), critic(ro.next_obs)
    v2, nv2 = ppo_iter.values_reused(critic, ro)
    torch.testing.assert_close(v2, v)
    torch.testing.assert_close(nv2, nv)


def test_firstrun_bench_runs_tiny(capsys):
    from engine.bench import firstrun

    res = firstrun.main(["--tiny"])
    out = capsys.readouterr().out
    assert res["tiny"] and res["unit_s"] > 0 and res["unit_cpu_s"] >= 0
    assert res["pretrain"]["wall_s"] > 0 and res["pretrain"]["iterations"] >= 1 and "start" in res["pretrain"]["roles"]
    assert res["headline"]["wall_s"] > 0 and res["headline"]["iterations"] == 1
    assert math.isfinite(res["ratio_pretrain"]) and math.isfinite(res["ratio_headline"])
    for field in ("unit before:", "unit after:", "pretraining (pickcube-lite from scratch", "headline run (",
                  "ratio pretraining / unit:", "ratio headline / unit:", firstrun.cpu_name()):
        assert field in out


def test_updates_bench_runs(capsys):
    from engine.bench import updates

    res = updates.main(["--epochs", "1", "--repeats", "1"])
    for name in ("awr", "ppo"):
        assert res[name]["engine_sps"] > 0 and res[name]["bare_sps"] > 0 and math.isfinite(res[name]["ratio"])
    out = capsys.readouterr().out
    assert "AWR (online-mc16-awr" in out and "PPO (gae-ppo" in out and "ratio update/bare" in out


def test_threads_bench_runs(capsys):
    from engine.bench import threads

    res = threads.main(["--steps", "5"])
    out = capsys.readouterr().out
    for label in ("idle machine", "busy machine", "mid  machine", "auto"):
        assert label in out
    assert res["idle_1_threads"] == [1] and res["idle_2_threads"] == [2]
    assert all(res[f"{b}_{m}_s"] > 0 for b in ("idle", "busy", "mid") for m in ("1", "2", "auto"))


def test_ranking_seed_bench_runs_tiny(capsys):
    from engine.bench import ranking_seed

    res = ranking_seed.main(["--tiny"])
    out = capsys.readouterr().out
    assert "ratio analysis / unit:" in out and res["ratio"] > 0 and res["ratio_cpu"] > 0
    assert "gae" in res["rho"]
