"""Replay forms of action masks (textdqn/masks.py): hand-checked ids, round trips against the
bool masks, the width bound, the choice of form, and a shard storing and sampling id masks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_batch
from textdqn.errors import SchemaError
from textdqn.masks import (
    MaskFormat,
    choose_mask_format,
    id_dtype,
    ids_to_masks,
    mask_ids,
    pack_masks,
    unpack_masks,
)
from textdqn.replay_server import ReplayShard
from textdqn.types import TransitionBatch


def test_ids_are_each_rows_allowed_actions_ascending_then_padding():
    mask = np.zeros((3, 10), dtype=bool)
    mask[0, [7, 2]] = True
    mask[1, [0, 9, 4, 5]] = True  # row 2 allows nothing
    ids = mask_ids(mask, width=4)
    assert ids.dtype == np.uint16
    np.testing.assert_array_equal(ids, [[2, 7, 0xFFFF, 0xFFFF], [0, 4, 5, 9], [0xFFFF] * 4])
    np.testing.assert_array_equal(ids_to_masks(ids, 10), mask)
    as_int32 = mask_ids(mask, width=5, dtype=np.int32)
    np.testing.assert_array_equal(as_int32[0], [2, 7, -1, -1, -1])
    np.testing.assert_array_equal(unpack_masks(as_int32, 10), mask)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 6),
    actions=st.sampled_from([1, 9, 500, 49_152, 65_535, 65_536, 70_001]),
    allowed=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_bool_to_ids_to_bool_is_the_identity(rows, actions, allowed, seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, actions), dtype=bool)
    mask[np.arange(rows)[:, None], rng.integers(0, actions, (rows, allowed))] = True
    mask[rng.random(rows) < 0.2] = False  # some rows allow nothing
    width = max(1, int(mask.sum(axis=1).max(initial=0)))
    ids = mask_ids(mask, width)
    assert ids.shape == (rows, width) and ids.dtype == id_dtype(actions)
    assert ids.dtype == (np.uint16 if actions <= 65_535 else np.int32)
    np.testing.assert_array_equal(unpack_masks(ids, actions), mask)
    np.testing.assert_array_equal(unpack_masks(pack_masks(mask), actions), mask)


def test_a_row_wider_than_the_declared_width_is_a_clear_error():
    mask = np.zeros((4, 100), dtype=bool)
    mask[2, :6] = True
    with pytest.raises(SchemaError, match=r"row 2 allows 6 actions, more than the 5 ids .*allowed_actions"):
        mask_ids(mask, width=5)
    with pytest.raises(SchemaError, match="row 2 allows 6"):
        MaskFormat("ids", 100, 5).encode(mask)
    with pytest.raises(SchemaError, match="of 100 actions"):
        MaskFormat("ids", 100, 5).encode(mask[:, :99])
    with pytest.raises(ValueError, match="uint16 ids"):
        mask_ids(np.zeros((1, 70_000), bool), 3, dtype=np.uint16)


def test_ids_outside_the_action_space_and_unknown_dtypes_are_refused():
    with pytest.raises(SchemaError, match="action id 12, outside the 10 actions"):
        ids_to_masks(np.array([[3, 12]], np.uint16), 10)
    with pytest.raises(SchemaError, match="action id -3"):
        ids_to_masks(np.array([[-3, -1]], np.int32), 10)
    with pytest.raises(SchemaError, match="dtype float32"):
        unpack_masks(np.zeros((1, 3), np.float32), 3)
    assert unpack_masks(None, 3) is None


@pytest.mark.parametrize(
    ("actions", "allowed", "kind", "row_bytes"),
    [
        (49_152, 64 + 12 + 1, "ids", 154),  # SmolLM2, top-64: 77 uint16 ids, not 6,144 packed bytes
        (50_257, None, "packed", 6_283),  # no declared bound: packed holds any mask
        (25, 25, "packed", 4),  # a dialogue's acts
        (800, 50, "packed", 100),  # a tie keeps packed
        (800, 49, "ids", 98),
        (500, 13, "ids", 26),  # the shipped TextGen env: top-8 + 4 concepts + EOS
        (70_000, 100, "ids", 400),  # past 16 bits: int32 ids
        (10, 50, "packed", 2),  # a bound above A is A
    ],
)
def test_the_smaller_form_is_chosen(actions, allowed, kind, row_bytes):
    fmt = choose_mask_format(actions, allowed)
    assert (fmt.kind, fmt.row_bytes) == (kind, row_bytes)
    mask = np.zeros((2, actions), dtype=bool)
    mask[:, [0, actions - 1]] = True
    encoded = fmt.encode(mask)
    assert encoded.nbytes == 2 * row_bytes
    np.testing.assert_array_equal(unpack_masks(encoded, actions), mask)


def test_formats_and_bounds_are_checked():
    with pytest.raises(ValueError, match="max_allowed = 0"):
        choose_mask_format(10, 0)
    with pytest.raises(ValueError, match=">= 1 action"):
        choose_mask_format(0, 3)
    with pytest.raises(ValueError, match="width"):
        MaskFormat("ids", 10)
    with pytest.raises(ValueError, match="'packed' or 'ids'"):
        MaskFormat("bool", 10)


ACTIONS, WIDTH = 49_152, 3


def _allowed(t: np.ndarray) -> np.ndarray:
    """The actions transition t's next state allows (data that encodes its answer): t, 1000 + t
    and, for even t, the last action; so rows differ in their number of ids."""
    mask = np.zeros((len(t), ACTIONS), dtype=bool)
    mask[np.arange(len(t)), t] = True
    mask[np.arange(len(t)), 1000 + t] = True
    mask[t % 2 == 0, ACTIONS - 1] = True
    return mask


def _with_id_masks(start: int, n: int) -> TransitionBatch:
    batch = make_batch(start, n)
    ids = choose_mask_format(ACTIONS, WIDTH).encode(_allowed(np.arange(start, start + n)))
    return TransitionBatch(**{**batch.fields(), "next_action_mask": ids})


def test_a_shard_stores_samples_and_checkpoints_id_masks(tmp_path):
    shard = ReplayShard(capacity=32)
    for start in range(0, 40, 10):  # wraps around the ring
        shard.insert(_with_id_masks(start, 10))
    result = shard.sample(64)
    ids = result.batch.next_action_mask
    assert ids.dtype == np.uint16 and ids.shape == (64, WIDTH)
    t = result.batch.obs[:, 0].astype(np.int64)
    np.testing.assert_array_equal(unpack_masks(ids, ACTIONS), _allowed(t))
    assert shard.bytes_per_item() == 4 * 4 * 2 + 8 + 4 + 4 + 4 + WIDTH * 2 + 8 + 16

    shard.checkpoint(tmp_path)
    restored = ReplayShard(capacity=32)
    restored.restore(tmp_path)
    size = shard.info().size
    np.testing.assert_array_equal(
        restored._storage.arrays(size)["next_action_mask"], shard._storage.arrays(size)["next_action_mask"]
    )
    packed = make_batch(40, 2)
    packed = TransitionBatch(**{**packed.fields(), "next_action_mask": pack_masks(_allowed(np.arange(2)))})
    with pytest.raises(SchemaError, match=r"next_action_mask.*max_allowed_actions\(\).*fresh replay"):
        restored.insert(packed)


def test_a_textgen_worker_sends_masks_as_ids_as_wide_as_the_env_declares():
    from textdqn.actors.worker import RolloutWorker
    from textdqn.config import ActorConfig, Config, EnvConfig

    lm = {"path": "textdqn:envs/textgen/data/concepts-lm"}
    env = EnvConfig(id="textdqn/TextGen-v0", num_envs=2, kwargs={"lm": lm, "top_k": 4})
    worker = RolloutWorker(Config(env=env, actors=ActorConfig(send_batch_size=8)), 0)
    textgen = worker.envs.envs[0].unwrapped
    width = textgen.max_allowed_actions()  # top-4 + the split's most concept tokens + EOS
    from textdqn.envs.textgen.tokens import concept_ids

    concepts = concept_ids(textgen.tokenizer, [r.concepts for r in textgen.records])
    assert width == 4 + max(len(ids) for ids in concepts) + 1
    assert worker.mask_format == MaskFormat("ids", textgen.vocab_size, width)
    batches, _ = worker.rollout(32)
    assert batches
    for batch in batches:
        assert batch.next_action_mask.dtype == np.uint16 and batch.next_action_mask.shape == (8, width)
        masks = unpack_masks(batch.next_action_mask, textgen.vocab_size)
        assert masks[:, textgen.eos_id].all() and not masks[:, textgen.banned].any()
