"""Validator rules for the estimators and update beyond the seed's matrix (issue 22): KB13 (short
TD(n)), KB08 on SARSA, CFG03 for their keys, KB05 / derived names with td<n> and recap."""
from __future__ import annotations

import dataclasses

from engine.config.loading import derive_exp_name, load_config
from engine.config.schema import RunConfig
from engine.errors import UserError
from engine.validate import validate

TD = dict(regime="online", estimator="td", update="awr", td_n=20, gamma=0.8, num_envs=100, num_steps=50,
          num_minibatches=25, critic_checkpoint="critic-expert")


def ids(**kw) -> list[str]:
    return [f.id for f in validate(RunConfig(**{**TD, **kw}))]


def test_kb13_fires_for_short_td_and_its_fix_clears_it():
    assert ids() == []
    for n in (1, 5):
        fs = [f for f in validate(RunConfig(**{**TD, "td_n": n})) if f.id == "KB13"]
        assert len(fs) == 1 and fs[0].severity == "warning" and "0.071" in fs[0].why and fs[0].fix == {"td_n": 20}
        assert validate(dataclasses.replace(RunConfig(**{**TD, "td_n": n}), **fs[0].fix)) == []
    assert "KB13" not in ids(td_n=6)
    assert "KB13" not in ids(estimator="gae", td_n=20)


def test_kb08_warns_for_sarsa():
    f = [f for f in validate(RunConfig(**{**TD, "estimator": "sarsa"})) if f.id == "KB08"]
    assert len(f) == 1 and "0.010" in f[0].why
    assert "KB08" not in ids(estimator="two-stage")


def test_cfg03_for_the_new_keys():
    assert "CFG03" in ids(estimator="gae", td_n=5)                  # td_n without td
    assert "CFG03" in ids(recap_alpha=0.5)                          # recap_alpha without recap
    assert "CFG03" not in ids(update="recap", recap_alpha=0.5)
    assert "CFG03" in ids(update="recap", awr_rescale_minibatch=False)
    assert "CFG03" not in ids(update="recap", awr_beta=1.0)         # RECAP reads AWR's beta
    assert "CFG03" in ids(fit_steps=100)
    assert "CFG03" not in ids(estimator="rank-q", fit_steps=100, rank_neighbours=4)
    assert "CFG03" in ids(estimator="two-stage", rank_neighbours=4)
    assert "CFG03" in ids(sarsa_target="mc")
    assert "CFG03" not in [f.id for f in validate(RunConfig(**{**TD, "estimator": "sarsa", "sarsa_target": "mc"}))]


def test_kb12_covers_offline_recap():
    c = RunConfig(regime="offline", estimator="two-stage", update="recap", num_envs=20, num_steps=50)
    assert "KB12" in [f.id for f in validate(c)]


def test_names_with_td_and_recap():
    c = RunConfig(**{**TD, "update": "recap", "recap_alpha": 0.5})
    assert derive_exp_name(c) == "online-td20-recap-b0.5-a0.5-g0.8"
    assert ids(exp_name=derive_exp_name(RunConfig(**TD))) == []
    assert "KB05" in ids(exp_name="td5-awr")                       # says 5 steps, td_n is 20
    assert "KB05" in ids(estimator="gae", exp_name="td20-awr")
    assert "KB05" in ids(exp_name="sarsa-awr")
    assert "KB05" in ids(exp_name="td20-recap")                    # recap named, awr used
    assert "KB05" not in ids(update="recap", exp_name="mc5_awr_recap".replace("mc5", "td20"))  # the seed's naming


def test_new_values_and_keys_are_validated_on_load():
    c = load_config("gae-ppo", {"estimator": "rank-q", "update": "recap", "recap_alpha": "0.25", "td_n": "3",
                                "sarsa_target": "mc", "fit_steps": "10", "rank_neighbours": "2"})
    assert (c.estimator, c.update, c.recap_alpha, c.td_n, c.sarsa_target) == ("rank-q", "recap", 0.25, 3, "mc")
    for bad in ({"estimator": "td2"}, {"td_n": "0"}, {"recap_alpha": "-1"}, {"sarsa_target": "q"},
                {"update": "recap2"}, {"rank_neighbours": "0"}):
        try:
            load_config("gae-ppo", bad)
        except UserError as e:
            assert len(e.lines()) == 1 and next(iter(bad)) in e.lines()[0]
        else:
            raise AssertionError(f"{bad} was accepted")


def test_kb14_recap_with_a_strong_push():
    assert "KB14" in ids(update="recap", recap_alpha=1.0)
    assert "KB14" in ids(update="recap", recap_alpha=0.5, update_epochs=4)
    assert "KB14" not in ids(update="recap", recap_alpha=0.1)
    assert "KB14" not in ids(update="recap", recap_alpha=0.0)                      # plain AWR on the positives
    assert "KB14" not in ids(update="awr")
    f = [f for f in validate(RunConfig(**{**TD, "update": "recap"})) if f.id == "KB14"][0]
    assert f.severity == "warning" and f.fix == {"recap_alpha": 0.1} and "0% in one iteration" in f.why
    assert "KB14" not in [g.id for g in validate(dataclasses.replace(RunConfig(**{**TD, "update": "recap"}), **f.fix))]
