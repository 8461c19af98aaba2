"""Dialogue domains as data: loading, the generated knowledge base, user goals."""

import copy

import numpy as np
import pytest
import yaml

from textdqn.envs.dialogue.domain import DOMAINS_DIR, load_domain, make_goals, make_kb
from textdqn.errors import ConfigError

MOVIES = yaml.safe_load((DOMAINS_DIR / "movies.yaml").read_text(encoding="utf-8"))
DROP = object()  # an edit that deletes the key


def _edited(tmp_path, edits: dict, name: str = "edited.yaml") -> str:
    """A copy of movies.yaml with `edits` ("a.b.c" -> new value, or DROP) written to tmp_path."""
    data = copy.deepcopy(MOVIES)
    for dotted, value in edits.items():
        *parents, key = dotted.split(".")
        section = data
        for parent in parents:
            section = section.setdefault(parent, {})
        if value is DROP:
            section.pop(key, None)
        else:
            section[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def _error(path: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_domain(path)
    return str(caught.value)


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
    assert abs(infeasible - domain.goals["infeasible_fraction"]) <= 0.05  # on purpose, about that share


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
    with pytest.raises(ConfigError, match="kb_size: missing — the domain file lacks it"):
        load_domain(str(bad))


# (edits to movies.yaml, what the message must say: the key path and the fix)
MALFORMED = {
    "missing key": ({"kb_size": DROP}, ["kb_size: missing", "add it"]),
    "unknown top-level key": (
        {"gaols": MOVIES["goals"], "goals": DROP},
        ["(top level): unknown keys ['gaols']", "did you mean 'goals'", "goals: missing"],
    ),
    "name not text": ({"name": ""}, ["name: '' is not a name", "write a non-empty text"]),
    "kb_size not positive": ({"kb_size": 0}, ["kb_size: 0 is not a whole number > 0", "e.g. 1000"]),
    "kb_size not a number": ({"kb_size": "many"}, ["kb_size: 'many'", "give the number of entries"]),
    "kb_slots not a mapping": (
        {"kb_slots": ["city"]},
        ["kb_slots: ['city'] is not a mapping", "slot: [value"],
    ),
    "slot without values": ({"kb_slots.genre": []}, ["kb_slots.genre: [] is not a non-empty list", "[a, b]"]),
    "repeated value": (
        {"kb_slots.genre": ["comedy", "drama", "comedy"]},
        ["kb_slots.genre: ['comedy'] listed more than once", "list each value once"],
    ),
    "yaml booleans": ({"user_slots.numberofpeople": [True, False]}, ["user_slots.numberofpeople", "quote"]),
    "slot in both sections": (
        {"user_slots.city": ["x"]},
        ["user_slots.city: also a knowledge-base slot", "rename it"],
    ),
    "informable not a list": (
        {"informable": "city"},
        ["informable: 'city' is not a list", "informable: [slot"],
    ),
    "informable typo": (
        {"informable": ["moviname", "city", "theater", "date", "starttime", "genre", "numberofpeople"]},
        ["informable: unknown slots ['moviname']", "did you mean 'moviename'"],
    ),
    "informable twice": (
        {"informable": [*MOVIES["informable"], "city"]},
        ["informable: ", "names a slot twice", "list each slot once"],
    ),
    "requestable user slot": (
        {"requestable": ["theater", "numberofpeople"]},
        ["requestable: unknown knowledge-base slots ['numberofpeople']", "use one of"],
    ),
    "offer_slots typo": (
        {"offer_slots": ["moviename", "theatre"]},
        ["offer_slots: unknown knowledge-base slots ['theatre']", "did you mean 'theater'"],
    ),
    "required typo": (
        {"goals.required": ["moviname", "numberofpeople"]},
        ["goals.required: ['moviname'] are not informable slots", "did you mean 'moviename'"],
    ),
    "grouped slot typo": (
        {"grouped": {"theatre": {"by": "city", "per_group": 3}}},
        ["grouped.theatre: unknown knowledge-base slots ['theatre']", "did you mean 'theater'"],
    ),
    "grouped by typo": (
        {"grouped.theater.by": "citi"},
        ["grouped.theater.by: unknown knowledge-base slots ['citi']", "did you mean 'city'"],
    ),
    "grouped by itself": ({"grouped.theater.by": "theater"}, ["grouped.theater.by", "name another"]),
    "per_group above the values": (
        {"grouped.theater.per_group": 9},
        ["grouped.theater.per_group: 9 is out of range", "from 1 to 8"],
    ),
    "per_group missing": ({"grouped.theater.per_group": DROP}, ["grouped.theater.per_group: missing"]),
    "grouped unknown key": (
        {"grouped.theater.per_grop": 3},
        ["grouped.theater: unknown keys ['per_grop']", "did you mean 'per_group'"],
    ),
    "goals count": ({"goals.count": 0}, ["goals.count: 0 is not a whole number > 0", "e.g. 2000"]),
    "goals test_fraction": (
        {"goals.test_fraction": 1.5},
        ["goals.test_fraction: 1.5 is not in (0, 1)", "e.g. 0.25"],
    ),
    "empty split": (
        {"goals.count": 3, "goals.test_fraction": 0.1},
        ["goals.test_fraction: 0.1 of 3 goals leaves a split empty", "raise goals.count"],
    ),
    "constraints below required": (
        {"goals.constraints": [1, 6]},
        ["goals.constraints: [1, 6] is out of range", "the 2 required slots", "(here 2 to 7)"],
    ),
    "constraints above informable": (
        {"goals.constraints": [4, 8]},
        ["goals.constraints: [4, 8] is out of range", "the 7 informable slots"],
    ),
    "constraints not a range": (
        {"goals.constraints": 5},
        ["goals.constraints: 5", "inclusive range [lo, hi]"],
    ),
    "requests reversed": ({"goals.requests": [2, 1]}, ["goals.requests: [2, 1] is out of range", "lo <= hi"]),
    "requests above requestable": (
        {"goals.requests": [0, 7]},
        ["goals.requests: [0, 7] is out of range", "the 6 requestable slots"],
    ),
    "infeasible_fraction": (
        {"goals.infeasible_fraction": -0.1},
        ["goals.infeasible_fraction: -0.1", "in [0, 1]"],
    ),
    "goals unknown key": (
        {"goals.infeasable_fraction": 0.1},
        ["goals: unknown keys ['infeasable_fraction']", "did you mean 'infeasible_fraction'"],
    ),
    "goals missing key": ({"goals.requests": DROP}, ["goals.requests: missing", "add it"]),
    "template missing": (
        {"templates.user.reject": DROP},
        [
            "templates.user.reject: missing",
            "no sentences for templates.user.reject",
            "add a list of sentences",
        ],
    ),
    "template empty": ({"templates.system.bye": []}, ["templates.system.bye: [] is not a non-empty list"]),
    "template not text": ({"templates.system.bye": [3]}, ["templates.system.bye: [3]", "give sentences"]),
    "template key typo": (
        {"templates.user.thank": ["thanks"]},
        ["templates.user: unknown keys ['thank']", "did you mean 'thanks'"],
    ),
    "template side missing": ({"templates.system": DROP}, ["templates.system: None is not a mapping"]),
    "summary placeholder typo": (
        {"templates.system.summary": ["{moviename} at {theatre}"]},
        ["templates.system.summary[0]: {theatre} is not filled there", "did you mean 'theater'"],
    ),
    "offer placeholder": (
        {"templates.system.offer": ["ok", "I found {moviename}"]},
        ["templates.system.offer[1]: {moviename} is not filled there", "use only: {entity}, {summary}"],
    ),
    "user greeting placeholder": (
        {"templates.user.greeting": ["hi {slot}"]},
        ["templates.user.greeting[0]: {slot} is not filled there", "use only: none"],
    ),
    "request value placeholder": (
        {"templates.user.request": ["what {slot} is {value}?"]},
        ["templates.user.request[0]: {value} is not filled there", "use only: {slot}"],
    ),
    "unbalanced brace": (
        {"templates.user.inform": ["{slot} is {value"]},
        [
            "templates.user.inform[0]: '{slot} is {value' is not a template",
            "write each placeholder as {name}",
        ],
    ),
    "user unknown key": (
        {"user": {"patiense": 3}},
        ["user: unknown keys ['patiense']", "did you mean 'patience'"],
    ),
    "user patience": ({"user": {"patience": -1}}, ["user.patience: -1", "must be a whole number >= 0"]),
    "user greeting_replies": ({"user": {"greeting_replies": 1.5}}, ["user.greeting_replies: 1.5"]),
    "user change_mind": ({"user": {"change_mind": 2}}, ["user.change_mind: 2", "must be a share in [0, 1]"]),
    "user not a mapping": ({"user": [3]}, ["user: [3] is not a mapping", "user: {patience: 3}"]),
    "fixed slot typo": (
        {"fixed": {"prise": {"by": "genre"}}},
        ["fixed.prise: unknown knowledge-base slots ['prise']", "did you mean 'price'"],
    ),
    "fixed by user slot": (
        {"fixed": {"price": {"by": "numberofpeople"}}},
        ["fixed.price.by: unknown knowledge-base slots ['numberofpeople']"],
    ),
    "fixed by missing": ({"fixed": {"price": {"values": {}}}}, ["fixed.price.by: missing"]),
    "fixed map incomplete": (
        {"fixed": {"price": {"by": "genre", "values": {"comedy": "$9", "drama": "$12"}}}},
        [
            "fixed.price.values: no value for genre ['action', 'animation', 'sci-fi']",
            "map every value of genre",
        ],
    ),
    "fixed map wrong values": (
        {"fixed": {"price": {"by": "date", "values": {d: "$100" for d in MOVIES["kb_slots"]["date"]}}}},
        ["fixed.price.values: ['$100'] are not values of price", "add them to kb_slots.price"],
    ),
    "fixed map wrong keys": (
        {
            "fixed": {
                "price": {
                    "by": "date",
                    "values": {**{d: "$9" for d in MOVIES["kb_slots"]["date"]}, "x": "$9"},
                }
            }
        },
        ["fixed.price.values: ['x'] are not values of date", "use only"],
    ),
    "fixed and grouped": (
        {"fixed": {"theater": {"by": "city"}}},
        ["fixed.theater: theater is also grouped", "drop it from grouped or from fixed"],
    ),
    "fixed under a group": (
        {"fixed": {"city": {"by": "moviename"}}},
        ["fixed.city: grouped.theater is drawn by city before fixed changes it", "or fix theater too"],
    ),
    "fixed chain order": (
        {"fixed": {"price": {"by": "genre"}, "genre": {"by": "moviename"}}},
        ["fixed.price: follows genre, fixed further down", "move fixed.genre above fixed.price"],
    ),
    "fixed unknown key": (
        {"fixed": {"price": {"by": "genre", "value": {}}}},
        ["fixed.price: unknown keys ['value']", "did you mean 'values'"],
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_domain_names_the_key_and_the_fix(tmp_path, case):
    edits, expected = MALFORMED[case]
    message = _error(_edited(tmp_path, edits))
    assert message.startswith("domain file "), message
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"


def test_yaml_syntax_errors_name_the_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: movies\nkb_slots: [a, b\nentity: x\n", encoding="utf-8")
    assert f"domain file {path} is not valid YAML at line 3, column" in _error(str(path))


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "a list"), ("", "empty"), ("just text\n", "a str")])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, text, kind):
    path = tmp_path / "flat.yaml"
    path.write_text(text, encoding="utf-8")
    assert f"(top level): the file is {kind}, not a mapping — start from a copy of movies.yaml" in _error(
        str(path)
    )


def test_every_problem_is_reported_at_once(tmp_path):
    edits = {
        "kb_size": -1,
        "goals.required": ["moviname"],
        "grouped.theater.per_group": 20,
        "user": {"patience": -1},
    }
    message = _error(_edited(tmp_path, edits))
    lines = message.splitlines()
    assert "has 4 problems" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "kb_size",
        "grouped.theater.per_group",
        "goals.required",
        "user.patience",
    ]


def test_the_env_fails_fast_with_the_same_message(tmp_path):
    from textdqn.envs.dialogue.env import DialogueEnv

    path = _edited(tmp_path, {"goals.required": ["moviname", "numberofpeople"]})
    with pytest.raises(ConfigError) as caught:
        DialogueEnv(domain=path)
    assert str(caught.value) == _error(path)


def test_the_user_change_template_is_optional(tmp_path):
    domain = load_domain(_edited(tmp_path, {"templates.user.change": DROP}))
    assert "change" not in domain.templates["user"]


# A movie has one genre (drawn), a genre one ticket price (mapped): a chain in file order.
PRICES = {"comedy": "$9", "drama": "$12", "action": "$15", "animation": "$9", "sci-fi": "$18"}
FIXED = {"genre": {"by": "moviename"}, "price": {"by": "genre", "values": PRICES}}


def test_fixed_slots_follow_their_by_slot(tmp_path):
    domain = load_domain(_edited(tmp_path, {"fixed": FIXED}))
    kb = make_kb(domain, 0)
    for i in range(len(kb)):
        entry = kb.entry(i)
        assert entry["price"] == PRICES[entry["genre"]]
    movie, genre = kb.slots.index("moviename"), kb.slots.index("genre")
    genre_of = {m: np.unique(kb.codes[kb.codes[:, movie] == m, genre]) for m in np.unique(kb.codes[:, movie])}
    assert all(len(g) == 1 for g in genre_of.values())  # one genre a movie
    assert len({int(g[0]) for g in genre_of.values()}) > 1  # drawn per movie, not one for all
    np.testing.assert_array_equal(make_kb(domain, 0).codes, kb.codes)  # the draw follows the seed
    # without fixed, the same seed gives the same other columns: fixed only overwrites its slots
    plain = make_kb(load_domain("movies"), 0)
    others = [kb.slots.index(s) for s in kb.slots if s not in FIXED]
    np.testing.assert_array_equal(plain.codes[:, others], kb.codes[:, others])


def test_goals_over_a_kb_with_fixed_slots_are_feasible_where_expected(tmp_path):
    domain = load_domain(_edited(tmp_path, {"fixed": FIXED, "goals.infeasible_fraction": 0.0}))
    kb = make_kb(domain, 0)
    train, test = make_goals(domain, kb, 0)
    assert all(g.feasible for g in train + test)  # drawn from consistent entries, none spoiled
    for goal in train + test:
        if "genre" in goal.constraints:
            movie = goal.constraints["moviename"]
            assert (
                goal.constraints["genre"]
                == kb.entry(int(np.flatnonzero(kb.match({"moviename": movie}))[0]))["genre"]
            )
    # a movie asked for with another genre than its own matches nothing
    entry = kb.entry(0)
    other = next(g for g in domain.kb_slots["genre"] if g != entry["genre"])
    assert not kb.match({"moviename": entry["moviename"], "genre": other}).any()
    assert kb.match({"moviename": entry["moviename"], "genre": entry["genre"]}).any()


def test_shipped_restaurants_fix_the_phone_by_restaurant():
    domain = load_domain("restaurants")
    kb = make_kb(domain, 0)
    name, phone = kb.slots.index("restaurantname"), kb.slots.index("phone")
    for code in np.unique(kb.codes[:, name]):
        assert len(np.unique(kb.codes[kb.codes[:, name] == code, phone])) == 1


def test_envs_share_a_domains_goals_until_its_file_changes(tmp_path):
    import os

    from textdqn.envs.dialogue.env import DialogueEnv

    path = _edited(tmp_path, {"goals.count": 300})
    first, second = DialogueEnv(domain=path), DialogueEnv(domain=path)
    assert first.goals is second.goals and first.kb is second.kb  # built once per process
    assert len(first.goals) + len(DialogueEnv(domain=path, split="test").goals) == 300
    assert DialogueEnv(domain=path, kb_seed=1).goals is not first.goals  # another seed, other goals
    _edited(tmp_path, {"goals.count": 200})
    stat = os.stat(path)  # a rewrite within the clock's resolution still has to count as a change
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    edited = DialogueEnv(domain=path)
    assert len(edited.goals) < len(first.goals)
