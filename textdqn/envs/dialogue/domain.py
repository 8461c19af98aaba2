"""Dialogue domains as data: slots, vocabularies, templates; a knowledge base and user goals
generated deterministically from a seed.

A domain file (YAML, see domains/) declares the knowledge-base slots with their values,
the user-only slots (constraints such as the number of people, known only to the user),
which slots a goal may constrain (informable) or ask about (requestable), and the goal
sampling recipe. A new domain is a new file: no code. `load_domain` checks the whole file
first (domain_check.py) and reports every problem at once; `textdqn domain check FILE` runs
the same check.

Entity attributes can depend on each other. `grouped: {theater: {by: city, per_group: 3}}`
draws each entry's theater from a subset of 3 tied to its city. `fixed:` makes one slot a
function of another, so that generated entries are consistent (a postcode follows the area,
a phone number its restaurant):

    fixed:
      postcode: {by: area, values: {north: cb41, south: cb28, centre: cb21}}  # explicit map
      phone: {by: restaurantname}  # no map: one value per `by` value, drawn once (seeded)

Both slots are knowledge-base slots; an explicit map covers every value of `by` with values
of the slot; entries are applied in file order after `grouped`, so a chain (area by city,
postcode by area) lists its links top-down.

The knowledge base is a struct of arrays (one int code per slot and entry), so matching
constraints against all entries is one vectorized comparison.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from textdqn.envs.dialogue.domain_check import TEMPLATE_KEYS as TEMPLATE_KEYS
from textdqn.envs.dialogue.domain_check import check_domain, format_problems
from textdqn.errors import ConfigError

DOMAINS_DIR = Path(__file__).parent / "domains"


@dataclasses.dataclass(frozen=True)
class UserRules:
    """How patient the simulated user is: a domain file's optional `user:` section."""

    patience: int = 3
    """turns that cost patience the user forgives; one more and it leaves (the dialogue fails)"""
    greeting_replies: int = 1
    """greetings the user answers with the next item on its agenda (later ones cost patience)"""
    change_mind: float = 0.5
    """share of users (with a feasible goal) who, having accepted an offer, change one constraint
    they told to another value some entry still has ("actually, make it 9pm"): the accepted
    entry no longer fits, so a policy must offer again before booking"""


@dataclasses.dataclass(frozen=True)
class Domain:
    """A dialogue domain as declared by its data file."""

    name: str
    entity: str
    kb_size: int
    kb_slots: dict[str, tuple[str, ...]]
    user_slots: dict[str, tuple[str, ...]]
    informable: tuple[str, ...]
    requestable: tuple[str, ...]
    offer_slots: tuple[str, ...]
    grouped: dict[str, dict[str, Any]]
    goals: dict[str, Any]
    templates: dict[str, dict[str, tuple[str, ...]]]
    user_rules: UserRules = UserRules()
    fixed: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """slot -> {"by": slot, "values": {by value: value} or None}: one value per `by` value"""

    @property
    def slots(self) -> tuple[str, ...]:
        """Every slot: knowledge-base slots first, then user-only ones."""
        return (*self.kb_slots, *self.user_slots)

    def values(self, slot: str) -> tuple[str, ...]:
        return self.kb_slots.get(slot) or self.user_slots[slot]


def load_domain(name_or_path: str) -> Domain:
    """A shipped domain by name ("movies", "restaurants") or a domain file by path.

    ConfigError, listing every problem of the file at once (see domain_check.py), unless the
    file is complete and consistent.
    """
    path = domain_path(name_or_path)
    data = read_domain_file(path)
    problems = check_domain(data, dataclasses.asdict(UserRules()))
    if problems:
        raise ConfigError(format_problems(path, problems))
    fixed = data.get("fixed") or {}
    return Domain(
        name=str(data["name"]),
        entity=str(data["entity"]),
        kb_size=int(data["kb_size"]),
        kb_slots={str(k): tuple(map(str, v)) for k, v in data["kb_slots"].items()},
        user_slots={str(k): tuple(map(str, v)) for k, v in (data["user_slots"] or {}).items()},
        informable=tuple(map(str, data["informable"])),
        requestable=tuple(map(str, data["requestable"])),
        offer_slots=tuple(map(str, data.get("offer_slots") or ())),
        grouped={str(k): dict(v) for k, v in (data.get("grouped") or {}).items()},
        goals=dict(data["goals"]),
        templates={side: {k: tuple(v) for k, v in acts.items()} for side, acts in data["templates"].items()},
        user_rules=_user_rules(data.get("user") or {}),
        fixed={str(k): _fixed_spec(v) for k, v in fixed.items()},
    )


def domain_path(name_or_path: str) -> Path:
    """The file of a shipped domain name ("movies") or of a path; ConfigError when there is none."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DOMAINS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))
        raise ConfigError(
            f"dialogue domain {name_or_path!r} not found: use one of {shipped} or a path to a YAML file"
        )
    return path


def read_domain_file(path: Path) -> object:
    """The parsed YAML of a domain file; ConfigError with the line and column of a syntax error."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"domain file {path} is not UTF-8 (byte {e.start}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"domain file {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}; fix it there"
        ) from None


def _user_rules(section: dict) -> UserRules:
    """The `user:` section as UserRules (checked by domain_check.check_user: known keys, whole
    numbers >= 0, shares in [0, 1])."""
    defaults = dataclasses.asdict(UserRules())
    return UserRules(**{k: type(defaults[k])(v) for k, v in section.items()})


def _fixed_spec(spec: dict) -> dict[str, Any]:
    values = spec.get("values")
    return {"by": str(spec["by"]), "values": {str(k): str(v) for k, v in values.items()} if values else None}


class KnowledgeBase:
    """`size` entries, each a value per knowledge-base slot, stored as int codes [size, S]."""

    def __init__(self, domain: Domain, codes: np.ndarray) -> None:
        self.domain = domain
        self.slots = tuple(domain.kb_slots)
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    def match(self, constraints: dict[str, str]) -> np.ndarray:
        """bool [size]: entries agreeing with every knowledge-base constraint (others ignored)."""
        ok = np.ones(len(self.codes), dtype=bool)
        for slot, value in constraints.items():
            if slot in self.domain.kb_slots:
                column = self.slots.index(slot)
                ok &= self.codes[:, column] == self.domain.kb_slots[slot].index(value)
        return ok

    def entry(self, index: int) -> dict[str, str]:
        return {
            slot: self.domain.kb_slots[slot][c] for slot, c in zip(self.slots, self.codes[index], strict=True)
        }


def make_kb(domain: Domain, seed: int = 0) -> KnowledgeBase:
    """The domain's knowledge base, the same for the same seed.

    Values are drawn uniformly per slot, except grouped slots, whose value comes from a
    fixed subset tied to another slot's value (e.g. a city's theaters), so partial
    constraints leave several matching entries, as in real booking data; then fixed slots,
    in file order, take the one value their `by` slot's value maps to (the domain's map, or
    one drawn per `by` value).
    """
    rng = np.random.default_rng(seed)
    slots = list(domain.kb_slots)
    codes = np.stack([rng.integers(0, len(domain.kb_slots[s]), domain.kb_size) for s in slots], axis=1)
    for slot, spec in domain.grouped.items():
        by = slots.index(spec["by"])
        n_values, n_groups = len(domain.kb_slots[slot]), len(domain.kb_slots[spec["by"]])
        subsets = np.stack([rng.choice(n_values, spec["per_group"], replace=False) for _ in range(n_groups)])
        pick = rng.integers(0, spec["per_group"], domain.kb_size)
        codes[:, slots.index(slot)] = subsets[codes[:, by], pick]
    for slot, spec in domain.fixed.items():
        codes[:, slots.index(slot)] = fixed_table(domain, slot, rng)[codes[:, slots.index(spec["by"])]]
    return KnowledgeBase(domain, codes.astype(np.int16))


def fixed_table(domain: Domain, slot: str, rng: np.random.Generator) -> np.ndarray:
    """int [values of `by`]: the code of fixed `slot`'s value for each value code of its `by`
    slot (the domain's explicit map, or else one value drawn per `by` value from `rng`)."""
    spec = domain.fixed[slot]
    by_values, values = domain.kb_slots[spec["by"]], domain.kb_slots[slot]
    if spec["values"] is None:
        return rng.integers(0, len(values), len(by_values))
    return np.array([values.index(spec["values"][v]) for v in by_values])


@dataclasses.dataclass(frozen=True)
class UserGoal:
    """What a simulated user wants: constraints to satisfy and slots to learn."""

    constraints: dict[str, str]
    requests: tuple[str, ...]
    feasible: bool
    fallback: dict[str, str] | None = None
    """for a goal made infeasible: the constraint it was made from (slot -> value), what the
    user settles for once the system says nothing matches"""


def make_goals(domain: Domain, kb: KnowledgeBase, seed: int = 0) -> tuple[list[UserGoal], list[UserGoal]]:
    """(train, test) goals, fixed by the seed. Each is drawn from a KB entry; a fraction is made
    infeasible on purpose by changing one constraint to a value no entry combines with the rest
    (the user falls back to the value it had once told that nothing matches)."""
    spec = domain.goals
    rng = np.random.default_rng(seed + 1)
    goals = [_goal(domain, kb, spec, rng) for _ in range(int(spec["count"]))]
    n_test = round(len(goals) * float(spec["test_fraction"]))
    return goals[n_test:], goals[:n_test]


def _goal(domain: Domain, kb: KnowledgeBase, spec: dict, rng: np.random.Generator) -> UserGoal:
    entry = kb.entry(int(rng.integers(len(kb))))
    lo, hi = spec["constraints"]
    required = [s for s in spec["required"] if s in domain.informable]
    optional = [s for s in domain.informable if s not in required]
    n_optional = max(0, int(rng.integers(lo, hi + 1)) - len(required))
    chosen = required + [str(s) for s in rng.choice(optional, min(n_optional, len(optional)), replace=False)]
    constraints = {s: entry[s] if s in entry else str(rng.choice(domain.user_slots[s])) for s in chosen}
    askable = [s for s in domain.requestable if s not in constraints]
    n_requests = int(rng.integers(spec["requests"][0], spec["requests"][1] + 1))
    requests = tuple(rng.choice(askable, min(n_requests, len(askable)), replace=False).tolist())
    fallback = None
    if rng.random() < float(spec["infeasible_fraction"]):
        constraints, fallback = _make_infeasible(domain, kb, constraints, rng)
    feasible = bool(kb.match(constraints).any())
    return UserGoal(constraints=constraints, requests=requests, feasible=feasible, fallback=fallback)


def _make_infeasible(
    domain: Domain, kb: KnowledgeBase, constraints: dict, rng: np.random.Generator
) -> tuple[dict, dict | None]:
    """Change one knowledge-base constraint to a value that no entry combines with the rest;
    returns the new constraints and the changed one as it was (None if none could change)."""
    change = change_one_constraint(domain, kb, constraints, rng, feasible=False)
    if change is None:
        return constraints, None
    slot, value = change
    return {**constraints, slot: value}, {slot: constraints[slot]}


def change_one_constraint(
    domain: Domain, kb: KnowledgeBase, constraints: dict[str, str], rng: np.random.Generator, feasible: bool
) -> tuple[str, str] | None:
    """A knowledge-base constraint and another value for it that some entry (`feasible`) or no
    entry (not `feasible`) combines with the rest, slots and values tried in an order drawn from
    `rng`; None if there is none. Makes goals infeasible, and users change their mind."""
    for slot in map(str, rng.permutation([s for s in constraints if s in domain.kb_slots])):
        for value in map(str, rng.permutation(domain.kb_slots[slot])):
            if value != constraints[slot] and bool(kb.match({**constraints, slot: value}).any()) == feasible:
                return slot, value
    return None
