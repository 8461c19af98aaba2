"""Stop rules of a run: whether an evaluation meets the config's target, and whether a budget
(env steps, updates, wall time) is spent. Pure functions of the stop config and numbers."""

from __future__ import annotations

from textdqn.errors import ConfigError


def target_reached(stop, result: dict) -> bool:
    """Whether `result` meets the target: target_metric >= target_value, every target_max
    metric below its value and every target_min metric at least its value; ConfigError when
    the evaluation has no such metric."""
    if not stop.target_metric:
        return False
    unknown = sorted({stop.target_metric, *stop.target_max, *stop.target_min} - set(result))
    if unknown:
        raise ConfigError(
            f"stop.target_metric / target_max / target_min name {unknown}, which the evaluation does not "
            f"report; it reports {sorted(result)}: fix the config"
        )
    within = all(result[k] < v for k, v in stop.target_max.items())
    reached = all(result[k] >= v for k, v in stop.target_min.items())
    return result[stop.target_metric] >= stop.target_value and within and reached


def target_summary(stop) -> dict:
    """The target as summary.json states it."""
    if not stop.target_metric:
        return {}
    return {
        "metric": stop.target_metric,
        "value": stop.target_value,
        **({"max": dict(stop.target_max)} if stop.target_max else {}),
        **({"min": dict(stop.target_min)} if stop.target_min else {}),
    }


def target_report(stop, result: dict, reached: bool) -> str:
    """One line on how `result` stands against the target, each metric with its bound, e.g.
    ``coverage_mean 0.933 (>= 0.8), eos_mean 0.767 (>= 0.9), judge_perplexity 4.08 (< 4.05):
    not yet``; `reached` is target_reached's verdict on it. "" without a target."""
    if not stop.target_metric:
        return ""
    bounds = [(stop.target_metric, ">=", stop.target_value)]
    bounds += [(k, ">=", v) for k, v in stop.target_min.items()]
    bounds += [(k, "<", v) for k, v in stop.target_max.items()]
    parts = []
    for key, op, bound in bounds:  # a metric the evaluation lacks shows as "-"
        value = result.get(key)
        parts.append(f"{key} {'-' if value is None else format(value, '.4g')} ({op} {bound:g})")
    return ", ".join(parts) + (": target reached" if reached else ": not yet")


def budget_spent(stop, env_steps: int, updates: int, wall: float) -> bool:
    """Whether env steps, updates or wall time have reached their stop.* budget (0: none)."""
    return (
        (stop.env_steps and env_steps >= stop.env_steps)
        or (stop.updates and updates >= stop.updates)
        or (stop.time_s and wall >= stop.time_s)
    )
