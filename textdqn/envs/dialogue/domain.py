"""Dialogue domains as data: slots, vocabularies, templates; a knowledge base and user goals
generated deterministically from a seed.

A domain file (YAML, see domains/) declares the knowledge-base slots with their values,
the user-only slots (constraints such as the number of people, known only to the user),
which slots a goal may constrain (informable) or ask about (requestable), and the goal
sampling recipe. A new domain is a new file: no code.

The knowledge base is a struct of arrays (one int code per slot and entry), so matching
constraints against all entries is one vectorized comparison.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from textdqn.errors import ConfigError

DOMAINS_DIR = Path(__file__).parent / "domains"
_REQUIRED_KEYS = (
    "name",
    "entity",
    "kb_size",
    "kb_slots",
    "user_slots",
    "informable",
    "requestable",
    "goals",
    "templates",
)


@dataclasses.dataclass(frozen=True)
class UserRules:
    """How patient the simulated user is: a domain file's optional `user:` section."""

    patience: int = 3
    """turns that cost patience the user forgives; one more and it leaves (the dialogue fails)"""
    greeting_replies: int = 1
    """greetings the user answers with the next item on its agenda (later ones cost patience)"""


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

    @property
    def slots(self) -> tuple[str, ...]:
        """Every slot: knowledge-base slots first, then user-only ones."""
        return (*self.kb_slots, *self.user_slots)

    def values(self, slot: str) -> tuple[str, ...]:
        return self.kb_slots.get(slot) or self.user_slots[slot]


def load_domain(name_or_path: str) -> Domain:
    """A shipped domain by name ("movies", "restaurants") or a domain file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DOMAINS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))
        raise ConfigError(
            f"dialogue domain {name_or_path!r} not found: use one of {shipped} or a path to a YAML file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"domain file {path} is not UTF-8 (byte {e.start}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"domain file {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}; fix it there"
        ) from None
    missing = [k for k in _REQUIRED_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise ConfigError(
            f"domain file {path} lacks {missing}; see {DOMAINS_DIR / 'movies.yaml'} for the format"
        )
    domain = Domain(
        name=str(data["name"]),
        entity=str(data["entity"]),
        kb_size=int(data["kb_size"]),
        kb_slots={k: tuple(map(str, v)) for k, v in data["kb_slots"].items()},
        user_slots={k: tuple(map(str, v)) for k, v in data["user_slots"].items()},
        informable=tuple(data["informable"]),
        requestable=tuple(data["requestable"]),
        offer_slots=tuple(data.get("offer_slots") or ()),
        grouped=dict(data.get("grouped") or {}),
        goals=dict(data["goals"]),
        templates={side: {k: tuple(v) for k, v in acts.items()} for side, acts in data["templates"].items()},
        user_rules=_user_rules(data.get("user") or {}, path),
    )
    _check(domain, path)
    return domain


def _user_rules(section: dict, path: Path) -> UserRules:
    """The `user:` section as UserRules: known keys, whole numbers >= 0."""
    known = {f.name for f in dataclasses.fields(UserRules)}
    if not isinstance(section, dict) or set(section) - known:
        extra = sorted(set(section) - known) if isinstance(section, dict) else section
        raise ConfigError(f"domain file {path}: user: has unknown keys {extra}; it takes {sorted(known)}")
    for key, value in section.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"domain file {path}: user.{key} must be a whole number >= 0, got {value!r}")
    return UserRules(**section)


# Every act the simulator and the system can say needs at least one sentence in the domain.
TEMPLATE_KEYS = {
    "user": ("greeting", "inform", "request", "confirm_yes", "confirm_no", "accept", "reject", "correct",
             "thanks", "dont_care"),
    "system": ("greeting", "request", "inform", "confirm", "offer", "book", "no_entry", "summary", "no_match",
               "unknown", "bye"),
}  # fmt: skip


def _check(domain: Domain, path: Path) -> None:
    missing = [
        f"templates.{side}.{key}"
        for side, keys in TEMPLATE_KEYS.items()
        for key in keys
        if not domain.templates.get(side, {}).get(key)
    ]
    if missing:
        raise ConfigError(
            f"domain file {path} has no sentences for {', '.join(missing)}: add a list for each "
            f"(see {DOMAINS_DIR / 'movies.yaml'})"
        )
    known = set(domain.slots)
    for field in ("informable", "requestable"):
        unknown = set(getattr(domain, field)) - known
        if unknown:
            raise ConfigError(f"domain file {path}: {field} names unknown slots {sorted(unknown)}")
    if set(domain.offer_slots) - set(domain.kb_slots):
        raise ConfigError(f"domain file {path}: offer_slots must be knowledge-base slots")
    if set(domain.requestable) - set(domain.kb_slots):
        raise ConfigError(f"domain file {path}: requestable slots must be knowledge-base slots")
    for slot, spec in domain.grouped.items():
        if slot not in domain.kb_slots or spec.get("by") not in domain.kb_slots:
            raise ConfigError(f"domain file {path}: grouped.{slot} must name two knowledge-base slots")


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
    constraints leave several matching entries, as in real booking data.
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
    return KnowledgeBase(domain, codes.astype(np.int16))


@dataclasses.dataclass(frozen=True)
class UserGoal:
    """What a simulated user wants: constraints to satisfy and slots to learn."""

    constraints: dict[str, str]
    requests: tuple[str, ...]
    feasible: bool


def make_goals(domain: Domain, kb: KnowledgeBase, seed: int = 0) -> tuple[list[UserGoal], list[UserGoal]]:
    """(train, test) goals, fixed by the seed. Each is drawn from a KB entry; a fraction is made
    infeasible on purpose by changing one constraint to a value no entry combines with the rest."""
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
    if rng.random() < float(spec["infeasible_fraction"]):
        constraints = _make_infeasible(domain, kb, constraints, rng)
    feasible = bool(kb.match(constraints).any())
    return UserGoal(constraints=constraints, requests=requests, feasible=feasible)


def _make_infeasible(domain: Domain, kb: KnowledgeBase, constraints: dict, rng: np.random.Generator) -> dict:
    """Change one knowledge-base constraint to a value that no entry combines with the rest."""
    kb_constraints = [s for s in constraints if s in domain.kb_slots]
    for slot in map(str, rng.permutation(kb_constraints)):
        for value in rng.permutation(domain.kb_slots[slot]):
            trial = {**constraints, slot: str(value)}
            if not kb.match(trial).any():
                return trial
    return constraints
