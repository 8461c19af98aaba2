"""What `textdqn domain check` and `textdqn domain show` say about a dialogue domain file.

`check_summary` loads a domain (load_domain runs the full check of domain_check.py, so a bad
file raises one ConfigError listing every problem) and describes it on one line;
`goal_stats` summarizes a domain's goals against its knowledge base; `show_domain` builds the
rich tables `domain show` prints: the act space, the observation size, the knowledge base,
the goals and two sampled goals as text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from textdqn.envs.dialogue.acts import SystemAct, system_acts
from textdqn.envs.dialogue.domain import Domain, KnowledgeBase, UserGoal, load_domain, make_goals, make_kb


@dataclasses.dataclass(frozen=True)
class GoalStats:
    """A domain's goals (train and test together) against its knowledge base."""

    count: int
    feasible_share: float
    """share of goals some knowledge-base entry satisfies"""
    constraints_mean: float
    constraints_min: int
    constraints_max: int
    requests_mean: float
    matches_mean: float
    """mean number of knowledge-base entries matching a feasible goal (nan without one)"""


def goal_stats(kb: KnowledgeBase, goals: Sequence[UserGoal]) -> GoalStats:
    """GoalStats of `goals` (at least one) against `kb`."""
    if not goals:
        raise ValueError("goal_stats needs at least one goal")
    constraints = np.array([len(g.constraints) for g in goals])
    feasible = [g for g in goals if g.feasible]
    matches = [int(kb.match(g.constraints).sum()) for g in feasible]
    return GoalStats(
        count=len(goals),
        feasible_share=len(feasible) / len(goals),
        constraints_mean=float(constraints.mean()),
        constraints_min=int(constraints.min()),
        constraints_max=int(constraints.max()),
        requests_mean=float(np.mean([len(g.requests) for g in goals])),
        matches_mean=float(np.mean(matches)) if matches else float("nan"),
    )


def check_summary(name_or_path: str, seed: int = 0) -> str:
    """'FILE: ok (...)' for a domain that loads and generates its knowledge base and goals;
    ConfigError listing every problem otherwise."""
    domain = load_domain(name_or_path)
    kb = make_kb(domain, seed)
    train, test = make_goals(domain, kb, seed)
    stats = goal_stats(kb, train + test)
    return (
        f"{name_or_path}: ok ({len(domain.slots)} slots: {len(domain.kb_slots)} knowledge-base, "
        f"{len(domain.user_slots)} user; {len(system_acts(domain))} system acts; {len(kb)} KB entries; "
        f"{stats.count} goals ({len(train)} train, {len(test)} test), {stats.feasible_share:.1%} feasible)"
    )


def act_name(act: SystemAct) -> str:
    """'request(city)' for a slot act, 'offer' for the others."""
    return f"{act.intent}({act.slot})" if act.slot else act.intent


def show_domain(name_or_path: str, seed: int = 0) -> list[RenderableType]:
    """The tables `textdqn domain show` prints for a domain, its knowledge base and goals built
    from `seed` (the env's kb_seed)."""
    from textdqn.envs.dialogue.env import DialogueEnv
    from textdqn.envs.dialogue.text import render_goal

    env = DialogueEnv(domain=name_or_path, kb_seed=seed)
    domain, kb = env.domain, env.kb
    train, test = make_goals(domain, kb, seed)
    goals = train + test
    rng = np.random.default_rng(seed)
    sampled = [goals[int(i)] for i in rng.choice(len(goals), min(2, len(goals)), replace=False)]
    overview = _pairs(
        f"domain {domain.name} ({name_or_path})",
        [
            ("entity", domain.entity),
            ("system acts", str(len(env.acts))),
            ("vector observation size", str(env.observation_space.shape[0])),
            ("knowledge-base entries", str(len(kb))),
        ],
    )
    samples = Table(title="two sampled goals", show_header=False)
    samples.add_column("goal")
    for goal in sampled:
        samples.add_row(Text(render_goal(goal, domain)))
    stats = _goal_table(goal_stats(kb, goals), train, test)
    return [overview, _act_table(env.acts), _kb_table(domain, kb), stats, samples]


def _pairs(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title)
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, Text(value))
    return table


def _act_table(acts: Sequence[SystemAct]) -> Table:
    table = Table(title=f"act space: {len(acts)} system acts")
    table.add_column("#", justify="right")
    table.add_column("act")
    for i, act in enumerate(acts):
        table.add_row(str(i), Text(act_name(act)))
    return table


def _kb_table(domain: Domain, kb: KnowledgeBase) -> Table:
    table = Table(title=f"knowledge base: {len(kb)} entries")
    for name in ("slot", "kind", "values", "distinct in KB", "informable", "requestable", "depends on"):
        table.add_column(name, justify="right" if name in ("values", "distinct in KB") else "left")
    for slot in domain.slots:
        in_kb = slot in domain.kb_slots
        distinct = str(len(np.unique(kb.codes[:, kb.slots.index(slot)]))) if in_kb else "-"
        table.add_row(
            Text(slot),
            "knowledge base" if in_kb else "user",
            str(len(domain.values(slot))),
            distinct,
            "yes" if slot in domain.informable else "",
            "yes" if slot in domain.requestable else "",
            Text(_depends(domain, slot)),
        )
    return table


def _depends(domain: Domain, slot: str) -> str:
    if slot in domain.fixed:
        how = "map" if domain.fixed[slot]["values"] else "drawn"
        return f"fixed by {domain.fixed[slot]['by']} ({how})"
    if slot in domain.grouped:
        spec = domain.grouped[slot]
        return f"grouped by {spec['by']}, {spec['per_group']} a group"
    return ""


def _goal_table(stats: GoalStats, train: Sequence[UserGoal], test: Sequence[UserGoal]) -> Table:
    return _pairs(
        f"goals: {stats.count} ({len(train)} train, {len(test)} test)",
        [
            ("feasible share", f"{stats.feasible_share:.1%}"),
            (
                "constraints per goal: mean (min-max)",
                f"{stats.constraints_mean:.2f} ({stats.constraints_min}-{stats.constraints_max})",
            ),
            ("requests per goal: mean", f"{stats.requests_mean:.2f}"),
            ("matching KB entries per feasible goal: mean", f"{stats.matches_mean:.1f}"),
        ],
    )
