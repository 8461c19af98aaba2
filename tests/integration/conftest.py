"""A local Ray instance shared by the integration tests (restarted if a test shut it down)."""

import pytest

ray = pytest.importorskip("ray")


@pytest.fixture
def ray_local():
    """Ray on this machine with more logical CPUs than cores, so fractional actors fit."""
    if not ray.is_initialized():
        ray.init(num_cpus=8, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    return ray


@pytest.fixture(scope="session", autouse=True)
def _shutdown_ray_at_the_end():
    yield
    if ray.is_initialized():
        ray.shutdown()
