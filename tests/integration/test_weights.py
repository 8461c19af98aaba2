"""Weights on Ray: the parameter store's long poll, as a rollout actor's checks see it."""

import time

import numpy as np
import pytest

from textdqn.cluster.actors import ParameterStore, StoreWeights

pytestmark = pytest.mark.integration


def _until_answered(weights: StoreWeights, have: int, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        version, state = weights.latest(have)
        if state is not None:
            return version, state
        time.sleep(0.02)
    raise AssertionError("no newer weights reached the actor")


def test_checks_never_wait_and_take_the_newest_version(ray_local):
    ray = ray_local
    store = ray.remote(ParameterStore).options(num_cpus=0).remote()
    learner, actor = StoreWeights(store), StoreWeights(store)
    learner.publish(0, {"w": np.zeros(3, np.float32)})
    version, state = _until_answered(actor, -1)  # no weights yet: waits for them
    assert version == 0 and state["w"].tolist() == [0, 0, 0]
    assert actor.latest(0) == (0, None)  # nothing newer: answers at once...
    assert not ray.wait([actor._asked], timeout=0)[0]  # ...its long poll waiting in the background
    for v in (1, 2, 3):  # three versions between two checks
        ray.get(store.publish.remote(v, [ray.put({"w": np.full(3, v, np.float32)})]))
    version, state = _until_answered(actor, 0)
    assert version == 3 and state["w"].tolist() == [3, 3, 3]  # the newest, not the first after 0
    assert actor.latest(3) == (3, None)
    ray.kill(store)
