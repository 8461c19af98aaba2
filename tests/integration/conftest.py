"""A local Ray instance shared by the integration tests of one session."""

import pytest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_local():
    """Ray on this machine with more logical CPUs than cores, so fractional actors fit."""
    ray.init(num_cpus=8, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()
