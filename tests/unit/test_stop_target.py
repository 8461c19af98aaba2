"""A run's target: target_metric at least target_value, every target_max metric below its value,
every target_min metric at least its value; and the baselines a run measures."""

import pytest

from textdqn.config import StopConfig, load_config
from textdqn.errors import ConfigError
from textdqn.stopping import target_reached, target_report, target_summary


def test_the_target_needs_every_bound():
    bound = {"any_wrong_inform_mean": 0.01}
    stop = StopConfig(target_metric="success_rate", target_value=0.95, target_max=bound)
    assert target_reached(stop, {"success_rate": 0.97, "any_wrong_inform_mean": 0.004})
    assert not target_reached(stop, {"success_rate": 0.97, "any_wrong_inform_mean": 0.02})
    assert not target_reached(stop, {"success_rate": 0.97, "any_wrong_inform_mean": 0.01})  # below, not at
    assert not target_reached(stop, {"success_rate": 0.94, "any_wrong_inform_mean": 0.0})
    expected = {"metric": "success_rate", "value": 0.95, "max": {"any_wrong_inform_mean": 0.01}}
    assert target_summary(stop) == expected
    assert not target_reached(StopConfig(env_steps=10), {"success_rate": 1.0})


def test_a_metric_the_evaluation_lacks_is_a_clear_error():
    stop = StopConfig(target_metric="success_rate", target_value=0.9, target_max={"wrong_inform_mean": 0.01})
    with pytest.raises(ConfigError, match=r"\['wrong_inform_mean'\].*any_wrong_inform_mean"):
        target_reached(stop, {"success_rate": 0.97, "any_wrong_inform_mean": 0.0})


def test_target_max_comes_from_yaml_and_set():
    config = load_config("configs/dialogue.yaml", ["stop.target_max={any_wrong_inform_mean: 0.02}"])
    assert config.stop.target_max == {"any_wrong_inform_mean": 0.02}
    assert load_config("configs/dialogue.yaml").stop.target_max == {"any_wrong_inform_mean": 0.01}


def test_target_min_bounds_count_at_their_value():
    stop = StopConfig(target_metric="coverage_mean", target_value=0.8, target_min={"eos_mean": 0.9})
    assert target_reached(stop, {"coverage_mean": 0.85, "eos_mean": 0.9})  # at least: the value counts
    assert not target_reached(stop, {"coverage_mean": 0.85, "eos_mean": 0.89})
    assert target_summary(stop)["min"] == {"eos_mean": 0.9}
    with pytest.raises(ConfigError, match=r"\['eos_mean'\]"):
        target_reached(stop, {"coverage_mean": 0.85})


def test_eval_baseline_is_one_agent_or_a_list():
    assert load_config("configs/dialogue.yaml").eval.baselines == ("rule",)
    config = load_config("configs/dialogue.yaml", ["eval.baseline=[rule, random]"])
    assert config.eval.baselines == ("rule", "random")
    assert load_config("configs/dialogue.yaml", ["eval.baseline=''"]).eval.baselines == ()
    with pytest.raises(ConfigError, match=r"\['oracle'\] are not baseline agents"):
        load_config("configs/dialogue.yaml", ["eval.baseline=[rule, oracle]"])


def test_target_report_gives_each_figure_with_its_bound():
    stop = StopConfig(
        target_metric="coverage_mean",
        target_value=0.8,
        target_min={"eos_mean": 0.9},
        target_max={"judge_perplexity": 4.05},
    )
    short = {"coverage_mean": 0.9333, "eos_mean": 0.7667, "judge_perplexity": 4.079}
    assert target_report(stop, short, target_reached(stop, short)) == (
        "coverage_mean 0.9333 (>= 0.8), eos_mean 0.7667 (>= 0.9), judge_perplexity 4.079 (< 4.05): not yet"
    )
    met = {"coverage_mean": 0.971, "eos_mean": 0.917, "judge_perplexity": 4.002}
    assert target_reached(stop, met)
    assert target_report(stop, met, True).endswith("judge_perplexity 4.002 (< 4.05): target reached")
    assert target_report(stop, {"coverage_mean": 0.9}, False).endswith(
        "eos_mean - (>= 0.9), judge_perplexity - (< 4.05): not yet"
    )
    assert target_report(StopConfig(env_steps=10), met, False) == ""
