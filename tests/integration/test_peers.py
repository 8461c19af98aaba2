"""The replay benchmark's peer adapters: they store every field and sample by priority.

Data encodes its own answer: transition t has obs[:, 0] = t, next_obs = obs + 1,
action = t, reward = t / 10, discount = 0.99.
"""

import numpy as np
import pytest

from textdqn.bench.peers import available_peers, make_peer
from textdqn.errors import ConfigError

LIBRARIES = {"rllib": "ray.rllib", "cpprb": "cpprb"}
BATCH = 64
SCHEMAS = {
    "vector": {
        "obs": (np.dtype(np.float32), (8,)),
        "next_obs": (np.dtype(np.float32), (8,)),
        "action": (np.dtype(np.int64), ()),
        "reward": (np.dtype(np.float32), ()),
        "discount": (np.dtype(np.float32), ()),
    },
    "tokens": {
        "obs": (np.dtype(np.uint16), (128,)),
        "next_obs": (np.dtype(np.uint16), (128,)),
        "action": (np.dtype(np.int64), ()),
        "reward": (np.dtype(np.float32), ()),
        "discount": (np.dtype(np.float32), ()),
    },
}


def make_batch(start: int, schema: dict) -> dict[str, np.ndarray]:
    """Transitions start .. start+BATCH-1, each field encoding the index t."""
    t = np.arange(start, start + BATCH)
    obs_dtype, obs_shape = schema["obs"]
    obs = np.zeros((BATCH, *obs_shape), dtype=obs_dtype)
    obs[:, 0] = t
    return {
        "obs": obs,
        "next_obs": obs + 1,
        "action": t.astype(np.int64),
        "reward": (t / 10).astype(np.float32),
        "discount": np.full(BATCH, 0.99, dtype=np.float32),
    }


@pytest.fixture(params=["rllib", "cpprb"])
def peer_name(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(LIBRARIES[request.param])
    return request.param


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_peer_stores_gathers_and_reprioritizes(peer_name: str, kind: str) -> None:
    schema = SCHEMAS[kind]
    peer = make_peer(peer_name, capacity=1000, alpha=0.6, beta=0.4, schema=schema)
    assert peer.name == peer_name
    for b in range(3):
        peer.insert(make_batch(b * BATCH, schema))
    assert len(peer) == 3 * BATCH  # one item per transition, not per batch

    drawn = peer.sample(32)
    f = drawn.fields
    assert set(f) == set(schema)
    for key, (dtype, shape) in schema.items():
        assert f[key].shape == (32, *shape), key
        assert f[key].dtype == dtype, key
    t = f["obs"][:, 0].astype(np.int64)
    # Rows are not mixed between fields, and the handle's indexes point at those rows.
    np.testing.assert_allclose(f["reward"], t / 10, rtol=1e-6)
    np.testing.assert_array_equal(f["action"], t)
    np.testing.assert_array_equal(f["next_obs"], f["obs"] + 1)
    np.testing.assert_allclose(f["discount"], 0.99, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(drawn.indexes, dtype=np.int64), t)
    assert len(drawn.weights) == 32
    assert len(np.unique(t)) > 1  # sampled over many items, not one

    # One item huge, the other sampled ones tiny; the ~160 unsampled keep priority 1,
    # so the target holds (1e9)**0.6 / ((1e9)**0.6 + 192) > 99.9% of the mass.
    target = drawn.indexes[0]
    priorities = np.where(drawn.indexes == target, 1e9, 1e-6)
    peer.update(drawn, priorities)
    again = peer.sample(32)
    hits = np.sum(again.fields["obs"][:, 0].astype(np.int64) == int(target))
    assert hits >= 28, f"target drawn {hits}/32 times"


def test_available_peers_lists_known_names_only() -> None:
    assert set(available_peers()) <= {"rllib", "cpprb"}


def test_unknown_peer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown replay peer"):
        make_peer("reverb", capacity=10, alpha=0.6, beta=0.4, schema=SCHEMAS["vector"])


def test_bad_alpha_is_a_config_error(peer_name: str) -> None:
    with pytest.raises(ConfigError, match="alpha"):
        make_peer(peer_name, capacity=10, alpha=0.0, beta=0.4, schema=SCHEMAS["vector"])
