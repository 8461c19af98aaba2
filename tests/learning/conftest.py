"""Learning tests train a tuned example end to end; they start and stop Ray themselves.

A test marked `slow` needs more of the 2-core machine than CI's budget leaves next to the
other tests: it runs only with TEXTDQN_SLOW_TESTS=1 (e.g. `TEXTDQN_SLOW_TESTS=1 pytest
tests/learning/test_dialogue_tokens.py`).
"""

import os

import pytest

from textdqn.cluster.supervisor import train
from textdqn.config import load_config


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TEXTDQN_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="a slow learning test (minutes on 2 cores): run with TEXTDQN_SLOW_TESTS=1")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.fixture
def train_example(tmp_path):
    """train_example(config_path, env_step_budget) -> (config, summary): the tuned example
    trained in local mode until its target or its budget in env steps (the time limit off:
    learning tests never depend on wall-clock)."""

    def run(path: str, budget: int):
        config = load_config(path, [f"stop.env_steps={budget}", "stop.time_s=0"])
        return config, train(config, mode="ray", run_dir=str(tmp_path / "run"), live=False)

    return run
