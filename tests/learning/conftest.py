"""Learning tests train a tuned example end to end; they start and stop Ray themselves."""

import pytest

from textdqn.cluster.supervisor import train
from textdqn.config import load_config


@pytest.fixture
def train_example(tmp_path):
    """train_example(config_path, env_step_budget) -> (config, summary): the tuned example
    trained in local mode until its target or its budget in env steps (the time limit off:
    learning tests never depend on wall-clock)."""

    def run(path: str, budget: int):
        config = load_config(path, [f"stop.env_steps={budget}", "stop.time_s=0"])
        return config, train(config, mode="ray", run_dir=str(tmp_path / "run"), live=False)

    return run
