"""engine.validate: each rule fires on its known-bad case and stays quiet on the near miss."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from engine.config.schema import RunConfig
from engine.validate import RULE_IDS, Finding, validate

# a clean online MC16 AWR config (online-mc16-awr's values)
ONLINE = dict(regime="online", estimator="mc", update="awr", mc_samples=16, awr_beta=0.5, gamma=0.8,
              num_envs=100, num_steps=50, update_epochs=200, total_timesteps=50000, num_minibatches=25,
              rollout_policy="optimal", checkpoint="start", optimal_checkpoint="optimal")
OFFLINE = dict(regime="offline", estimator="mc", update="awr", mc_samples=16, awr_beta=1.0, gamma=0.8,
               num_envs=128, num_steps=200, num_minibatches=32, update_epochs=4, data_checkpoint="expert",
               rollout_policy="data")
PPO = dict(regime="online", estimator="gae", update="ppo", gamma=0.8, critic_checkpoint="critic-expert",
           num_envs=100, num_steps=50, num_minibatches=25, update_epochs=100, target_kl=100.0)


def cfg(base=ONLINE, **kw) -> RunConfig:
    return RunConfig(**{**base, **kw})


def ids(c: RunConfig, metas=None, **kw) -> list[str]:
    return [f.id for f in validate(c, metas, **kw)]


def only(c: RunConfig, rid: str, metas=None) -> Finding:
    hits = [f for f in validate(c, metas) if f.id == rid]
    assert len(hits) == 1, [f.id for f in validate(c, metas)]
    return hits[0]


def applied(c: RunConfig, f: Finding) -> RunConfig:
    return dataclasses.replace(c, **f.fix)


@pytest.mark.parametrize("base", [ONLINE, OFFLINE, PPO])
def test_clean_bases_have_no_findings(base):
    assert ids(cfg(base)) == []


# --- KB01 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["ckpt_101", "runs/pickcube_ppo/ckpt_101.pt", "expert", "optimal", "ckpt_301"])
def test_kb01_strong_by_name(spec):
    f = only(cfg(checkpoint=spec), "KB01")
    assert f.severity == "error" and f.fix == {"checkpoint": "start"}
    assert "62.7%" in f.why and "43.8%" in f.why
    assert "KB01" not in ids(applied(cfg(checkpoint=spec), f))


def test_kb01_by_measured_det_sr_whatever_the_name():
    c = cfg(checkpoint="/somewhere/my_policy.pt")
    assert "KB01" in ids(c, {"checkpoint": {"role": "", "det_sr": 0.90, "stoch_sr": 0.6}})
    assert "KB01" in ids(c, {"checkpoint": {"det_sr": 0.97}})
    assert "KB01" not in ids(c, {"checkpoint": {"det_sr": 0.89}})
    assert "KB01" not in ids(c, {"checkpoint": None})


def test_kb01_by_meta_role():
    assert "KB01" in ids(cfg(checkpoint="/x/p.pt"), {"checkpoint": {"role": "expert", "det_sr": 0.5}})
    assert "KB01" not in ids(cfg(checkpoint="/x/p.pt"), {"checkpoint": {"role": "start", "det_sr": 0.5}})


def test_kb01_near_misses():
    for spec in ("start", "ckpt_76_logstd-1.5", "ckpt_1010", "none", "/runs/ckpt_10.pt"):
        assert "KB01" not in ids(cfg(checkpoint=spec), {"checkpoint": {"det_sr": 0.438}}), spec


def test_kb01_strong_start_role_has_no_circular_fix():
    f = only(cfg(checkpoint="start"), "KB01", {"checkpoint": {"role": "start", "det_sr": 0.95}})
    assert f.fix == {} and "pretrain" in f.why


# --- KB02 .. KB04 -------------------------------------------------------------------------

def test_kb02():
    f = only(cfg(deterministic_eval=False), "KB02")
    assert f.severity == "error" and f.fix == {"deterministic_eval": True} and "12" in f.why
    assert "KB02" not in ids(cfg(deterministic_eval=True))


def test_kb03():
    f = only(cfg(PPO, update_epochs=20, target_kl=0.1), "KB03")
    assert f.severity == "error" and f.fix == {"target_kl": 100.0} and "--update_epochs 20 --target_kl 0.1" in f.why
    assert "KB03" in ids(cfg(PPO, update_epochs=10, target_kl=0.05))
    assert "KB03" not in ids(cfg(PPO, update_epochs=9, target_kl=0.1))
    assert "KB03" not in ids(cfg(PPO, update_epochs=20, target_kl=0.2))
    assert "KB03" not in ids(cfg(ONLINE, update_epochs=200, target_kl=0.1))  # AWR has no KL stop
    assert "KB03" not in ids(applied(cfg(PPO, update_epochs=20, target_kl=0.1), f))


def test_kb04():
    f = only(cfg(PPO, update_epochs=4, warmup_iters=3, target_kl=0.1), "KB04")
    assert f.severity == "error" and f.fix == {"target_kl": 100.0} and "7%" in f.why
    assert "KB04" in ids(cfg(PPO, update_epochs=4, warmup_iters=5, target_kl=0.1))
    assert "KB04" not in ids(cfg(PPO, update_epochs=4, warmup_iters=6, target_kl=0.1))
    assert "KB04" not in ids(cfg(PPO, update_epochs=4, warmup_iters=0, target_kl=0.1))
    assert "KB04" not in ids(cfg(PPO, update_epochs=4, warmup_iters=3, target_kl=0.2))


# --- KB05 ---------------------------------------------------------------------------------

def test_kb05_mc_count():
    f = only(cfg(exp_name="mc5_awr", mc_samples=16), "KB05")
    assert f.severity == "error" and "mc5_awr" in f.why and "16" in f.why
    assert f.fix == {"exp_name": "online-mc16-awr-b0.5-g0.8"}
    assert "KB05" not in ids(applied(cfg(exp_name="mc5_awr"), f))
    assert "KB05" in ids(cfg(exp_name="mc1_qv_par", mc_samples=5))
    assert "KB05" not in ids(cfg(exp_name="mc16_awr", mc_samples=16))


def test_kb05_whole_tokens_only():
    assert "KB05" in ids(cfg(exp_name="mc160-awr", mc_samples=16))      # says 160, not 16
    assert "KB05" in ids(cfg(exp_name="mc16-awr", mc_samples=160))
    assert "KB05" not in ids(cfg(exp_name="mc160-awr", mc_samples=160))
    assert "KB05" not in ids(cfg(exp_name="mcts16-awrlike-ppo2", mc_samples=8))  # no whole token matches
    assert "KB05" not in ids(cfg(exp_name="MC16_AWR_beta0.5", mc_samples=16))


def test_kb05_estimator_update_regime_words():
    assert "KB05" in ids(cfg(PPO, exp_name="gae-awr"))                 # awr named, ppo used
    assert "KB05" in ids(cfg(ONLINE, exp_name="gae-awr"))              # gae named, mc used
    assert "KB05" in ids(cfg(ONLINE, exp_name="iql-awr"))
    assert "KB05" in ids(cfg(ONLINE, exp_name="mc16-ppo"))
    assert "KB05" in ids(cfg(PPO, exp_name="mc-ppo"))                  # mc named, gae used
    assert "KB05" in ids(cfg(ONLINE, exp_name="offline-mc16-awr"))     # offline named, online used
    assert "KB05" not in ids(cfg(OFFLINE, estimator="iql-v-gae", exp_name="iql-v-gae-awr"))
    assert "KB05" not in ids(cfg(PPO, exp_name="gae-ppo-baseline"))
    assert "KB05" not in ids(cfg(ONLINE, exp_name=""))


# --- KB06, KB07 ---------------------------------------------------------------------------

def test_kb06():
    f = only(cfg(PPO, critic_checkpoint="critic-optimal"), "KB06")
    assert f.severity == "error" and f.fix == {"critic_checkpoint": "critic-expert"} and "83.3%" in f.why
    assert "KB06" in ids(cfg(PPO, critic_checkpoint="/x/v.pt"), {"critic_checkpoint": {"role": "critic-optimal"}})
    assert "KB06" not in ids(cfg(PPO, critic_checkpoint="/x/v.pt"), {"critic_checkpoint": {"role": "critic-expert"}})
    assert "KB06" not in ids(cfg(PPO, critic_checkpoint="pretrained_critic_sparse"))
    assert "KB06" not in ids(cfg(PPO, critic_checkpoint="none", gamma=0.99))


def test_kb07():
    bad = cfg(OFFLINE, rollout_policy="optimal", optimal_checkpoint="ckpt_301", data_checkpoint="ckpt_101")
    f = only(bad, "KB07")
    assert f.severity == "error" and f.fix == {"rollout_policy": "data"}
    assert "83.9%" in f.why and "89.1%" in f.why and "22.6%" in f.why
    assert "KB07" not in ids(applied(bad, f))
    assert "KB07" in ids(cfg(OFFLINE, rollout_policy="current"))
    assert "KB07" in ids(cfg(OFFLINE, update="ppo", rollout_policy="current"))   # any offline MC
    # near misses: same policy for data and re-rollouts, online, or no MC
    assert "KB07" not in ids(cfg(OFFLINE, rollout_policy="data"))
    assert "KB07" not in ids(cfg(OFFLINE, rollout_policy="optimal", optimal_checkpoint="expert",
                                 data_checkpoint="ckpt_101"))
    assert "KB07" not in ids(cfg(OFFLINE, rollout_policy="optimal", optimal_checkpoint="/l/e.pt",
                                 data_checkpoint="expert"), {"optimal_checkpoint": {"role": "expert"}})
    assert "KB07" not in ids(cfg(ONLINE))
    assert "KB07" not in ids(cfg(OFFLINE, estimator="iql-v-gae", rollout_policy="optimal"))


# --- KB08 .. KB12 -------------------------------------------------------------------------

def test_kb08():
    f = only(cfg(OFFLINE, estimator="iql"), "KB08")
    assert f.severity == "warning" and f.fix == {"estimator": "iql-v-gae"} and "0.01" in f.why and "0.93" in f.why
    assert "KB08" not in ids(cfg(OFFLINE, estimator="iql-v-gae"))


def test_kb09():
    f = only(cfg(regress_advantages=True), "KB09")
    assert f.severity == "warning" and f.fix == {"regress_advantages": False} and "0.02" in f.why
    assert "KB09" not in ids(cfg(regress_advantages=False))


def test_kb10_mc_awr_gamma():
    f = only(cfg(gamma=0.99), "KB10")
    assert f.severity == "warning" and f.fix == {"gamma": 0.8} and "99.1%" in f.why
    assert "KB10" in ids(cfg(gamma=0.95))
    assert "KB10" not in ids(cfg(gamma=0.9))
    assert "KB10" not in ids(cfg(PPO, estimator="mc", gamma=0.99))   # MC PPO: not the AWR rule


def test_kb10_gae_gamma_without_critic():
    f = only(cfg(PPO, critic_checkpoint="none", gamma=0.8), "KB10")
    assert f.fix == {"gamma": 0.99} and "71.7%" in f.why and "92.1%" in f.why
    assert "KB10" in ids(cfg(PPO, critic_checkpoint="none", gamma=0.94))
    assert "KB10" not in ids(cfg(PPO, critic_checkpoint="none", gamma=0.95))
    assert "KB10" not in ids(cfg(PPO, critic_checkpoint="critic-expert", gamma=0.8))


def test_kb11():
    f = only(cfg(PPO, reward_scale=20.0), "KB11")
    assert f.severity == "warning" and f.fix == {"reward_scale": 1.0} and "81.2%" in f.why
    f = only(cfg(PPO, critic_checkpoint="none", gamma=0.99, critic_layers=10, critic_width=512), "KB11")
    assert f.fix == {"critic_layers": 3, "critic_width": 256}
    assert "KB11" in ids(cfg(PPO, critic_checkpoint="/x/v.pt"),
                         {"critic_checkpoint": {"critic_layers": 10, "critic_width": 512}})
    # near misses
    assert "KB11" not in ids(cfg(PPO, reward_scale=1.0))
    assert "KB11" not in ids(cfg(PPO, critic_checkpoint="none", gamma=0.99, critic_layers=4, critic_width=192))
    assert "KB11" not in ids(cfg(PPO, critic_checkpoint="/x/v.pt"),
                             {"critic_checkpoint": {"critic_layers": 3, "critic_width": 256}})
    assert "KB11" not in ids(cfg(ONLINE, reward_scale=20.0))                       # AWR
    assert "KB11" not in ids(cfg(PPO, regime="offline", reward_scale=20.0))       # offline


def test_kb12():
    f = only(cfg(OFFLINE, num_envs=128, num_steps=100), "KB12")
    assert f.severity == "warning"
    assert f.fix == {"num_envs": 128, "num_steps": 200, "num_minibatches": 32}
    f = only(cfg(OFFLINE, update_epochs=9), "KB12")
    assert f.fix == {"update_epochs": 4}
    assert "KB12" not in ids(cfg(OFFLINE, num_envs=128, num_steps=200, update_epochs=8))   # exactly 25,600 and 8
    assert "KB12" not in ids(cfg(OFFLINE, num_envs=256, num_steps=100, update_epochs=4))
    assert "KB12" not in ids(cfg(ONLINE))                                                    # online
    bad = cfg(OFFLINE, num_envs=10, num_steps=50, num_minibatches=10, update_epochs=50)
    assert "KB12" not in ids(applied(bad, only(bad, "KB12")))


# --- CFG ----------------------------------------------------------------------------------

def test_cfg01():
    f = only(cfg(num_minibatches=32), "CFG01")
    assert f.severity == "warning" and f.fix == {"num_minibatches": 25} and "5,000" in f.why
    assert "CFG01" not in ids(cfg(num_minibatches=25))
    assert "CFG01" not in ids(cfg(num_minibatches=40))
    assert only(cfg(num_envs=2, num_steps=3, num_minibatches=32), "CFG01").fix == {"num_minibatches": 6}


def test_cfg02():
    c = cfg(PPO, gamma=0.8)
    f = only(c, "CFG02", {"critic_checkpoint": {"role": "critic-expert", "gamma": 0.99}})
    assert f.severity == "warning" and f.fix == {"gamma": 0.99}
    assert "CFG02" not in ids(c, {"critic_checkpoint": {"gamma": 0.8}})
    assert "CFG02" not in ids(c, {"critic_checkpoint": None})
    assert "CFG02" not in ids(cfg(PPO, critic_checkpoint="none", gamma=0.99), {"critic_checkpoint": {"gamma": 0.5}})


def test_cfg03_keys_without_effect():
    f = only(cfg(ONLINE, target_kl=0.2, warmup_iters=2), "CFG03")
    assert f.severity == "warning" and f.fix == {"target_kl": 100.0, "warmup_iters": 0}
    assert "CFG03" in ids(cfg(PPO, awr_beta=1.0))
    assert "CFG03" in ids(cfg(PPO, mc_samples=8))
    assert "CFG03" in ids(cfg(ONLINE, num_iterations=50))
    assert "CFG03" not in ids(cfg(OFFLINE, num_iterations=50))
    assert "CFG03" not in ids(cfg(PPO, target_kl=0.5))


# --- history ------------------------------------------------------------------------------

def make_run(root, name, config: dict, srs, status="done", junk_tail=True):
    from engine.config.tomlio import write_flat

    d = root / name
    d.mkdir(parents=True)
    write_flat(d / "config.toml", config)
    lines = [json.dumps({"iteration": i + 1, "env_steps": 5000 * (i + 1), "wall_s": 1.0, "sr": sr, "sr_at_end": sr})
             for i, sr in enumerate(srs)]
    (d / "metrics.jsonl").write_text("\n".join(lines) + ("\n{\"iteration\": 9, \"sr\"" if junk_tail else "\n"))
    (d / "status.json").write_text(json.dumps({"status": status}))
    return d


def test_hist01(tmp_path):
    c = cfg(ONLINE, preset="online-mc16-awr")
    kind = {**ONLINE, "preset": "online-mc16-awr", "env": "pickcube-lite"}
    make_run(tmp_path, "r1-low", kind, [0.1, 0.2, 0.3], status="done")
    make_run(tmp_path, "r2-good", kind, [0.5, 0.9, 0.97])
    make_run(tmp_path, "r3-short", kind, [0.0, 0.1])                               # fewer than 3 iterations
    make_run(tmp_path, "r4-other", {**kind, "estimator": "gae", "update": "ppo"}, [0.1, 0.1, 0.1])
    make_run(tmp_path, "r5-otherpreset", {**kind, "preset": "online-mc1-awr"}, [0.1, 0.1, 0.1])
    make_run(tmp_path, "r6-otherenv", {**kind, "env": "maniskill:PickCube-v1"}, [0.1, 0.1, 0.1])
    make_run(tmp_path, "r7-justabove", kind, [0.2, 0.3, 0.5])                        # 0.5 >= 0.4955
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.toml").write_text("not [toml")
    (tmp_path / "notadir.txt").write_text("x")
    (tmp_path / "nometrics").mkdir()
    (tmp_path / "nometrics" / "config.toml").write_text('regime = "online"\n')
    f = [x for x in validate(c, runs_dir=tmp_path, expected_sr=0.991) if x.id == "HIST01"]
    assert len(f) == 1 and f[0].severity == "warning" and f[0].fix == {}
    assert "r1-low" in f[0].why and "30.0%" in f[0].why and "99.1%" in f[0].why
    for other in ("r2-good", "r3-short", "r4-other", "r5-otherpreset", "r6-otherenv", "r7-justabove"):
        assert other not in f[0].why
    # expected SR from the preset's metadata when not given; nothing without a runs dir
    assert "HIST01" in ids(c, runs_dir=tmp_path)
    assert "HIST01" not in ids(c)
    assert "HIST01" not in ids(c, runs_dir=tmp_path / "missing", expected_sr=0.991)


def test_hist01_quiet_when_runs_are_fine(tmp_path):
    make_run(tmp_path, "ok", {**ONLINE}, [0.6, 0.8, 0.95], junk_tail=False)
    assert "HIST01" not in ids(cfg(ONLINE), runs_dir=tmp_path, expected_sr=0.991)


# --- the whole list -----------------------------------------------------------------------

def test_errors_first_and_json():
    c = cfg(PPO, checkpoint="ckpt_101", deterministic_eval=False, update_epochs=20, target_kl=0.1,
            reward_scale=20.0, num_minibatches=32, exp_name="mc5_awr")
    fs = validate(c)
    sev = [f.severity for f in fs]
    assert sev == sorted(sev, key=lambda s: s != "error")
    assert [f.id for f in fs] == ["KB01", "KB02", "KB03", "KB05", "KB11", "CFG01"]
    out = json.loads(json.dumps([f.to_dict() for f in fs]))
    assert set(out[0]) == {"id", "severity", "title", "why", "fix"}
    assert all(f.id in RULE_IDS and f.severity in ("error", "warning") and f.title and f.why for f in fs)


def test_all_fixes_applied_leave_no_findings():
    c = cfg(PPO, checkpoint="ckpt_101", deterministic_eval=False, update_epochs=20, target_kl=0.1,
            warmup_iters=3, reward_scale=20.0, num_minibatches=32, exp_name="mc5_awr",
            critic_checkpoint="critic-optimal", regress_advantages=True)
    for _ in range(3):
        for f in validate(c):
            c = applied(c, f)
    assert validate(c) == []


def test_no_torch_at_import():
    code = ("import sys; import engine.config.loading, engine.validate; "
            "from engine.config.schema import RunConfig; engine.validate.validate(RunConfig()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_cfg05_an_iteration_far_larger_than_the_budget():
    from engine.validate import validate

    cfg = RunConfig(num_envs=1200, num_steps=200, total_timesteps=15_000)  # one 240k-step iteration for 15k
    (f,) = [f for f in validate(cfg) if f.id == "CFG05"]
    assert f.severity == "warning" and "240,000" in f.why and "16x" in f.why and f.fix == {"num_steps": 12}
    assert not [f for f in validate(RunConfig(num_envs=50, num_steps=100, total_timesteps=50_000)) if f.id == "CFG05"]
    assert not [f for f in validate(RunConfig(regime="offline", num_envs=1200, num_steps=200, total_timesteps=15_000))
                if f.id == "CFG05"]


def test_cfg06_a_run_estimated_at_days_is_flagged_before_launch():
    from engine.config.loading import load_config
    from engine.config.walltime import estimate_wall_s

    slow = load_config("gae-ppo-gamma99", {"update_epochs": 100000})  # KL stop off: it would run them all
    (f,) = [f for f in validate(slow) if f.id == "CFG06"]
    assert f.severity == "warning" and "days" in f.title and f.fix == {"update_epochs": 100}
    assert estimate_wall_s(slow) > 900 * estimate_wall_s(load_config("gae-ppo-gamma99", {}))  # 1000x the epochs
    for preset in ("gae-ppo", "gae-ppo-gamma99", "online-mc16-awr", "offline-mc16-awr"):  # the presets: minutes
        assert estimate_wall_s(load_config(preset, {})) < 3600
        assert not [f for f in validate(load_config(preset, {})) if f.id == "CFG06"]
