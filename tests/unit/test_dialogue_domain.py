"""Dialogue domains as data: loading, the generated knowledge base, user goals."""

import numpy as np
import pytest

from textdqn.envs.dialogue.domain import load_domain, make_goals, make_kb
from textdqn.errors import ConfigError


@pytest.mark.parametrize("name", ["movies", "restaurants"])
def test_kb_and_goals_are_deterministic_from_the_seed(name):
    domain = load_domain(name)
    kb_a, kb_b, kb_c = make_kb(domain, 0), make_kb(domain, 0), make_kb(domain, 1)
    assert len(kb_a) == domain.kb_size == 1000
    np.testing.assert_array_equal(kb_a.codes, kb_b.codes)
    assert not np.array_equal(kb_a.codes, kb_c.codes)
    train_a, test_a = make_goals(domain, kb_a, seed=0)
    train_b, test_b = make_goals(domain, kb_b, seed=0)
    assert train_a == train_b and test_a == test_b
    assert len(test_a) == 500 and len(train_a) == 1500


@pytest.mark.parametrize("name", ["movies", "restaurants"])
def test_goals_follow_the_domain_recipe(name):
    domain = load_domain(name)
    kb = make_kb(domain, 0)
    train, test = make_goals(domain, kb, seed=0)
    goals = train + test
    lo, hi = domain.goals["constraints"]
    for goal in goals:
        assert lo <= len(goal.constraints) <= hi
        assert set(domain.goals["required"]) <= set(goal.constraints)
        assert set(goal.constraints) <= set(domain.informable)
        assert 1 <= len(goal.requests) <= 2 and not set(goal.requests) & set(goal.constraints)
        assert all(type(k) is str and v in domain.values(k) for k, v in goal.constraints.items())
        assert goal.feasible == bool(kb.match(goal.constraints).any())
    infeasible = np.mean([not g.feasible for g in goals])
    assert 0.05 <= infeasible <= 0.15  # about infeasible_fraction = 0.1, on purpose


def test_partial_constraints_are_ambiguous():
    domain = load_domain("movies")
    kb = make_kb(domain, 0)
    train, _ = make_goals(domain, kb, seed=0)
    partial = [int(kb.match({k: v for k, v in list(g.constraints.items())[:2]}).sum()) for g in train[:100]]
    assert np.median(partial) >= 5  # an agent must ask for more before it can offer one entry


def test_grouped_slots_stay_inside_their_group():
    domain = load_domain("movies")
    kb = make_kb(domain, 0)
    city, theater = kb.slots.index("city"), kb.slots.index("theater")
    per_city = [
        len(np.unique(kb.codes[kb.codes[:, city] == c, theater])) for c in range(len(domain.kb_slots["city"]))
    ]
    assert max(per_city) <= domain.grouped["theater"]["per_group"]


def test_bad_domains_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="movies"):
        load_domain("no-such-domain")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    with pytest.raises(ConfigError, match="lacks"):
        load_domain(str(bad))
