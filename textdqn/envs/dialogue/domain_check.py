"""Every problem of a dialogue domain file, found at once, before anything is built from it.

`check_domain(data, user_fields)` takes the parsed YAML (whatever it holds) and returns a
list of problems, each one line `key.path: problem — fix`; an empty list means the file
can be loaded. `format_problems(path, problems)` joins them into one message. Pure
functions, no numpy: `domain.load_domain` runs them on every load (so training fails fast
with the same messages), and `textdqn domain check FILE` prints them.

Placeholders are checked against what text.py fills for each template key (PLACEHOLDERS),
so a typo fails here, not in the middle of a run.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REQUIRED_KEYS = ("name", "entity", "kb_size", "kb_slots", "user_slots", "informable", "requestable",
                 "goals", "templates")  # fmt: skip
OPTIONAL_KEYS = ("offer_slots", "grouped", "fixed", "user")
EXAMPLE = Path(__file__).parent / "domains" / "movies.yaml"
GOAL_KEYS = ("count", "test_fraction", "constraints", "requests", "required", "infeasible_fraction")

# Every act the simulator and the system can say needs at least one sentence in the domain.
TEMPLATE_KEYS = {
    "user": ("greeting", "inform", "request", "confirm_yes", "confirm_no", "accept", "reject", "correct",
             "thanks", "dont_care"),
    "system": ("greeting", "request", "inform", "confirm", "offer", "book", "no_entry", "summary", "no_match",
               "unknown", "bye"),
}  # fmt: skip
OPTIONAL_TEMPLATE_KEYS = {"user": ("change",), "system": ()}
"""Template keys a domain may leave out: `user.change` falls back to `user.correct`."""

_SLOT_VALUE = ("slot", "value")
PLACEHOLDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "user": {"inform": _SLOT_VALUE, "correct": _SLOT_VALUE, "change": _SLOT_VALUE, "confirm_no": _SLOT_VALUE,
             "dont_care": _SLOT_VALUE, "request": ("slot",)},
    "system": {"offer": ("entity", "summary"), "book": ("entity", "summary"), "no_entry": ("entity",)},
}  # fmt: skip
"""The {placeholders} text.py fills per template key; keys not listed get _DEFAULT_PLACEHOLDERS
(system.summary instead takes the knowledge-base slots by name)."""
_DEFAULT_PLACEHOLDERS = {"user": (), "system": ("slot", "value", "entity")}


def check_domain(data: object, user_fields: Mapping[str, object]) -> list[str]:
    """Every problem of a parsed domain file, one `key.path: problem — fix` line each.

    `user_fields` maps each key the `user:` section takes to its default (an int: a whole
    number >= 0; a float: a share in [0, 1]). Cross-references (slots named in goals,
    templates, grouped, fixed) are checked against whatever slots could be read, so one
    broken section does not hide the problems of the others.
    """
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return [f"(top level): the file is {kind}, not a mapping — start from a copy of movies.yaml"]
    problems = [
        f"{key}: missing — the domain file lacks it; add it (see movies.yaml)"
        for key in REQUIRED_KEYS
        if key not in data
    ]
    problems += _unknown_keys("(top level)", data, (*REQUIRED_KEYS, *OPTIONAL_KEYS))
    for key in ("name", "entity"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            problems.append(f"{key}: {data[key]!r} is not a name — write a non-empty text, e.g. {key}: x")
    if "kb_size" in data and not (_is_int(data["kb_size"]) and data["kb_size"] > 0):
        size = data["kb_size"]
        problems.append(
            f"kb_size: {size!r} is not a whole number > 0 — give the number of entries, e.g. 1000"
        )
    kb, p_kb = _slot_table(data, "kb_slots")
    user, p_user = _slot_table(data, "user_slots")
    problems += p_kb + p_user
    problems += [
        f"user_slots.{s}: also a knowledge-base slot — rename it or drop it from one section"
        for s in user
        if s in kb
    ]
    slots = {**user, **kb}
    informable, p_inf = _slot_list(data, "informable", slots, "slots")
    requestable, p_req = _slot_list(data, "requestable", kb, "knowledge-base slots")
    _, p_offer = _slot_list(data, "offer_slots", kb, "knowledge-base slots", required=False)
    problems += p_inf + p_req + p_offer
    problems += _check_grouped(data.get("grouped"), kb)
    problems += _check_fixed(data.get("fixed"), kb, data.get("grouped"))
    problems += _check_goals(data.get("goals"), informable, requestable)
    problems += _check_templates(data.get("templates"), kb)
    problems += check_user(data.get("user"), user_fields)
    return problems


def format_problems(path: Path | str, problems: Sequence[str]) -> str:
    """One message for a ConfigError: the file, then each problem on its own line."""
    many = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
    lines = "\n".join(f"  {p}" for p in problems)
    return f"domain file {path} has {many} (format: see {EXAMPLE}):\n{lines}"


def check_user(section: object, fields: Mapping[str, object]) -> list[str]:
    """Problems of the optional `user:` section: known keys; whole numbers >= 0 for int fields,
    shares in [0, 1] for float fields."""
    if section is None:
        return []
    if not isinstance(section, dict):
        return [f"user: {section!r} is not a mapping — write e.g. user: {{patience: 3}}, or drop it"]
    problems = []
    unknown = sorted(map(str, set(section) - set(fields)))
    if unknown:
        hints = "".join(_did_you_mean(k, fields) for k in unknown)
        problems.append(f"user: unknown keys {unknown} — {hints}it takes {sorted(fields)}")
    for key, value in section.items():
        if key not in fields:
            continue
        if isinstance(fields[key], float):
            if not (_is_number(value) and 0 <= value <= 1):
                problems.append(
                    f"user.{key}: {value!r} is out of range — user.{key} must be a share in [0, 1]"
                )
        elif not (_is_int(value) and value >= 0):
            problems.append(f"user.{key}: {value!r} is out of range — user.{key} must be a whole number >= 0")
    return problems


def _slot_table(data: dict, key: str) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """(slot -> its values as text, problems) of kb_slots or user_slots; broken slots are left out."""
    section = data.get(key)
    if key not in data:
        return {}, []
    if not isinstance(section, dict):
        return {}, [f"{key}: {section!r} is not a mapping — write one slot a line: `slot: [value, ...]`"]
    table, problems = {}, []
    for slot, values in section.items():
        where = f"{key}.{slot}"
        if not isinstance(values, list) or not values:
            problems.append(
                f"{where}: {values!r} is not a non-empty list — give the slot's values, e.g. [a, b]"
            )
            continue
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, str | int | float)]
        if bad:
            problems.append(
                f"{where}: {bad} are not plain values — write text or numbers; quote words YAML "
                'reads as booleans ("yes", "no", "on", "off")'
            )
            continue
        text = [str(v) for v in values]
        twice = sorted({v for v in text if text.count(v) > 1})
        if twice:
            problems.append(f"{where}: {twice} listed more than once — list each value once")
        table[str(slot)] = tuple(text)
    return table, problems


def _slot_list(
    data: dict, key: str, known: Mapping[str, object], what: str, required: bool = True
) -> tuple[list[str], list[str]]:
    """(the slot names of a list such as informable, as written; problems): a list of distinct
    slots of `known` (names are not checked when `known` could not be read)."""
    if key not in data or (not required and data[key] is None):
        return [], []
    names = data[key]
    if not isinstance(names, list):
        return [], [f"{key}: {names!r} is not a list — write {key}: [slot, ...]"]
    unknown = [str(n) for n in names if known and str(n) not in known]
    problems = [_not_slot(key, unknown, known, what)] if unknown else []
    if len(set(map(str, names))) < len(names):
        problems.append(f"{key}: {names} names a slot twice — list each slot once")
    return [str(n) for n in names], problems


def _not_slot(where: str, names: list[str], known: Mapping[str, object], what: str) -> str:
    hints = "".join(_did_you_mean(n, known) for n in names)
    return f"{where}: unknown {what} {names} — {hints}use one of {sorted(known)}"


def _check_grouped(section: object, kb: dict[str, tuple[str, ...]]) -> list[str]:
    """grouped: slot -> {by: another knowledge-base slot, per_group: 1..number of the slot's values}."""
    problems: list[str] = []
    for slot, spec, where in _specs("grouped", section, kb, problems):
        problems += _unknown_keys(where, spec, ("by", "per_group"))
        _check_by(where, slot, spec, kb, problems)
        n = spec.get("per_group")
        if "per_group" not in spec:
            problems.append(f"{where}.per_group: missing — add how many of {slot}'s values each group gets")
        elif slot in kb and not (_is_int(n) and 1 <= n <= len(kb[slot])):
            problems.append(
                f"{where}.per_group: {n!r} is out of range — give a whole number from 1 to {len(kb[slot])}, "
                f"the number of values of {slot}"
            )
    return problems


def _check_fixed(section: object, kb: dict[str, tuple[str, ...]], grouped: object) -> list[str]:
    """fixed: slot -> {by: another knowledge-base slot, values: optional map by-value -> value}."""
    problems: list[str] = []
    specs = list(_specs("fixed", section, kb, problems))
    order = [slot for slot, _, _ in specs]
    for slot, spec, where in specs:
        problems += _unknown_keys(where, spec, ("by", "values"))
        by = _check_by(where, slot, spec, kb, problems)
        if isinstance(grouped, dict) and slot in grouped:
            problems.append(f"{where}: {slot} is also grouped — drop it from grouped or from fixed")
        if isinstance(grouped, dict):
            problems += [
                f"{where}: grouped.{g} is drawn by {slot} before fixed changes it — drop {slot} from fixed, "
                f"or fix {g} too"
                for g, spec in grouped.items()
                if isinstance(spec, dict) and spec.get("by") == slot
            ]
        if by in order and order.index(by) > order.index(slot):
            problems.append(f"{where}: follows {by}, fixed further down — move fixed.{by} above fixed.{slot}")
        if "values" not in spec or by is None or slot not in kb:
            continue
        values = spec["values"]
        if not isinstance(values, dict):
            problems.append(
                f"{where}.values: {values!r} is not a mapping — map each value of {by} to a {slot}"
            )
            continue
        given = {str(k): v for k, v in values.items()}
        missing = [v for v in kb[by] if v not in given]
        if missing:
            problems.append(f"{where}.values: no value for {by} {missing} — map every value of {by}")
        extra = sorted(set(given) - set(kb[by]))
        if extra:
            problems.append(f"{where}.values: {extra} are not values of {by} — use only {list(kb[by])}")
        wrong = sorted({str(v) for v in given.values() if str(v) not in kb[slot]})
        if wrong:
            problems.append(f"{where}.values: {wrong} are not values of {slot} — add them to kb_slots.{slot}")
    return problems


def _specs(key: str, section: object, kb: Mapping[str, object], problems: list[str]):
    """(slot, spec, key path) of each entry of grouped or fixed whose spec is a mapping."""
    if section is None:
        return
    if not isinstance(section, dict):
        problems.append(f"{key}: {section!r} is not a mapping — write one slot a line: `slot: {{by: other}}`")
        return
    for slot, spec in section.items():
        where = f"{key}.{slot}"
        if kb and str(slot) not in kb:
            problems.append(_not_slot(where, [str(slot)], kb, "knowledge-base slots"))
        if not isinstance(spec, dict):
            problems.append(f"{where}: {spec!r} is not a mapping — write {slot}: {{by: other_slot, ...}}")
            continue
        yield str(slot), spec, where


def _check_by(where: str, slot: str, spec: dict, kb: Mapping[str, object], problems: list[str]) -> str | None:
    """The `by` slot of a grouped or fixed entry, or None (with the problem added) when it is not usable."""
    by = spec.get("by")
    if by is None:
        problems.append(f"{where}.by: missing — name the knowledge-base slot {slot} depends on")
        return None
    if str(by) not in kb:
        if kb:
            problems.append(_not_slot(f"{where}.by", [str(by)], kb, "knowledge-base slots"))
        return None
    if str(by) == slot:
        problems.append(f"{where}.by: {slot} cannot depend on itself — name another knowledge-base slot")
        return None
    return str(by)


def _check_goals(section: object, informable: list[str], requestable: list[str]) -> list[str]:
    """The goal recipe: counts, shares and [lo, hi] ranges that make_goals can draw from."""
    if not isinstance(section, dict):
        return [] if section is None else [f"goals: {section!r} is not a mapping — copy it from movies.yaml"]
    problems = _unknown_keys("goals", section, GOAL_KEYS)
    problems += [f"goals.{k}: missing — add it (see movies.yaml)" for k in GOAL_KEYS if k not in section]
    count, share = section.get("count"), section.get("test_fraction")
    if "count" in section and not (_is_int(count) and count > 0):
        problems.append(
            f"goals.count: {count!r} is not a whole number > 0 — give the number of goals, e.g. 2000"
        )
    if "test_fraction" in section and not (_is_number(share) and 0 < share < 1):
        problems.append(
            f"goals.test_fraction: {share!r} is not in (0, 1) — give the test goals' share, e.g. 0.25"
        )
    elif _is_int(count) and count > 0 and _is_number(share) and not 1 <= round(count * share) < count:
        problems.append(
            f"goals.test_fraction: {share} of {count} goals leaves a split empty — raise goals.count or "
            "move test_fraction towards 0.5"
        )
    inf = section.get("infeasible_fraction")
    if "infeasible_fraction" in section and not (_is_number(inf) and 0 <= inf <= 1):
        problems.append(f"goals.infeasible_fraction: {inf!r} is not in [0, 1] — give a share, e.g. 0.1")
    required = section.get("required")
    if "required" in section and not isinstance(required, list):
        problems.append(f"goals.required: {required!r} is not a list — write required: [slot, ...]")
        required = []
    outside = [str(n) for n in required or () if informable and str(n) not in informable]
    if outside:
        hints = "".join(_did_you_mean(n, informable) for n in outside)
        fix = "fix the names, or add them to informable"
        problems.append(f"goals.required: {outside} are not informable slots — {hints}{fix}")
    n_required = len(required or ())
    lo_min, n_inf, n_req = max(1, n_required), len(informable), len(requestable)
    bounds = f"from max(1, the {n_required} required slots) to the {n_inf} informable slots"
    problems += _range("goals.constraints", section.get("constraints"), lo_min, n_inf, bounds)
    bounds = f"from 0 to the {n_req} requestable slots"
    problems += _range("goals.requests", section.get("requests"), 0, n_req, bounds)
    return problems


def _range(where: str, pair: object, lo: int, hi: int, bounds: str) -> list[str]:
    """Problems of an inclusive [lo, hi] range of whole numbers within the bounds."""
    if pair is None:
        return []
    if not (isinstance(pair, list) and len(pair) == 2 and all(map(_is_int, pair))):
        return [f"{where}: {pair!r} — write an inclusive range [lo, hi] of whole numbers"]
    if not lo <= pair[0] <= pair[1] <= hi:
        return [f"{where}: {pair} is out of range — need lo <= hi, both {bounds} (here {lo} to {hi})"]
    return []


def _check_templates(section: object, kb: Mapping[str, object]) -> list[str]:
    """Each act's sentences: a non-empty list of texts per key, with placeholders text.py fills."""
    if section is None:
        return []
    if not isinstance(section, dict):
        return [f"templates: {section!r} is not a mapping — copy templates: from movies.yaml"]
    problems = _unknown_keys("templates", section, tuple(TEMPLATE_KEYS))
    for side, keys in TEMPLATE_KEYS.items():
        acts = section.get(side)
        if not isinstance(acts, dict):
            problems.append(
                f"templates.{side}: {acts!r} is not a mapping — write one act a line: `act: [...]`"
            )
            continue
        problems += _unknown_keys(f"templates.{side}", acts, (*keys, *OPTIONAL_TEMPLATE_KEYS[side]))
        problems += [
            f"templates.{side}.{key}: missing — the domain has no sentences for templates.{side}.{key}; "
            "add a list of sentences"
            for key in keys
            if key not in acts
        ]
        for key, sentences in acts.items():
            if key in keys or key in OPTIONAL_TEMPLATE_KEYS[side]:  # unknown keys are reported above
                problems += _check_sentences(side, str(key), sentences, kb)
    return problems


def _check_sentences(side: str, key: str, sentences: object, kb: Mapping[str, object]) -> list[str]:
    where = f"templates.{side}.{key}"
    if not (isinstance(sentences, list) and sentences and all(isinstance(s, str) for s in sentences)):
        return [f'{where}: {sentences!r} is not a non-empty list of texts — give sentences, e.g. ["hello"]']
    if (side, key) == ("system", "summary"):
        if not kb:
            return []  # the knowledge-base slots could not be read: reported already
        allowed = tuple(kb)
    else:
        allowed = PLACEHOLDERS.get(side, {}).get(key, _DEFAULT_PLACEHOLDERS.get(side, ()))
    return [p for i, s in enumerate(sentences) for p in _check_sentence(f"{where}[{i}]", s, allowed)]


def _check_sentence(where: str, sentence: str, allowed: Sequence[str]) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(sentence) if name is not None]
    except ValueError as e:
        fix = "write each placeholder as {name}, a brace as {{ or }}"
        return [f"{where}: {sentence!r} is not a template ({e}) — {fix}"]
    usable = ", ".join(f"{{{a}}}" for a in allowed) or "none"
    return [
        f"{where}: {{{name}}} is not filled there — {_did_you_mean(name, allowed)}use only: {usable}"
        for name in dict.fromkeys(names)
        if name not in allowed
    ]


def _unknown_keys(where: str, section: Mapping, known: Sequence[str]) -> list[str]:
    unknown = sorted(str(k) for k in section if k not in known)
    if not unknown:
        return []
    hints = "".join(_did_you_mean(k, known) for k in unknown)
    return [f"{where}: unknown keys {unknown} — {hints}it takes {list(known)}"]


def _did_you_mean(word: str, choices: Iterable[object]) -> str:
    """The hint "did you mean 'x' for 'y'? " for the closest of `choices`, or ""."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"did you mean {close[0]!r} for {word!r}? " if close else ""


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
