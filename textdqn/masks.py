"""The forms a `next_action_mask` takes in replay, and the pure functions between them.

A mask says which of an env's A actions are valid; the learner needs it as bool [B, A]. In
replay it takes one of three forms, told apart by dtype alone (actors send the smaller of
the last two, `choose_mask_format`):

  bool [B, A]                    1 byte an action (what envs report; tests, small spaces)
  uint8 [B, ceil(A / 8)]         packed 8 actions a byte (`pack_masks`)
  uint16 or int32 [B, W]         the allowed action ids of each row (`mask_ids`), padded
                                 with PAD (-1 in the id dtype: 0xFFFF for uint16); uint16
                                 when every id and PAD fit in 16 bits (A <= 65,535)

The id form suits a large space with few valid actions: TextGen-v0 over a 49,152-token
vocabulary allows top-k tokens + the prompt's concept tokens + EOS, so a row of 64 + 12 + 1
ids costs 154 bytes where the packed form costs 6,144. Replay rows have a fixed schema, so W is
fixed for a run: the bound the env declares (`max_allowed_actions()`, see
`choose_mask_format`); a row allowing more raises SchemaError instead of losing actions.

`unpack_masks` reads every form back to bool [B, A], vectorized (no loop over rows).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from textdqn.errors import SchemaError

PAD = -1
"""Padding of an id row, cast to the id dtype (0xFFFF for uint16, -1 for int32)."""
_UINT16_ACTIONS = int(np.iinfo(np.uint16).max)  # ids 0..65,534 and PAD = 65,535
_ID_DTYPES = (np.dtype(np.uint16), np.dtype(np.int32))


def _pad(dtype: np.dtype) -> np.generic:
    """PAD in `dtype` (C cast: 0xFFFF for uint16)."""
    return np.array(PAD).astype(dtype)[()]


def pack_masks(mask: np.ndarray) -> np.ndarray:
    """bool [B, A] -> uint8 [B, ceil(A / 8)], 8 actions a byte (np.packbits along the actions)."""
    return np.packbits(np.asarray(mask, dtype=bool), axis=1)


def id_dtype(num_actions: int) -> np.dtype:
    """The dtype of the id form for `num_actions` actions: uint16 when the ids and PAD fit, else int32."""
    if num_actions > np.iinfo(np.int32).max:
        raise ValueError(f"{num_actions:,} actions do not fit in int32 ids")
    return np.dtype(np.uint16 if num_actions <= _UINT16_ACTIONS else np.int32)


def mask_ids(mask: np.ndarray, width: int, dtype: np.dtype | type | None = None) -> np.ndarray:
    """bool [B, A] -> the allowed ids of each row, ascending, padded with PAD: [B, width].

    dtype defaults to `id_dtype(A)`. SchemaError when a row allows more than `width` actions
    (the declared bound is wrong: storing the row would drop valid actions).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask_ids takes bool masks [B, A], got shape {mask.shape}")
    dtype = id_dtype(mask.shape[1]) if dtype is None else np.dtype(dtype)
    if dtype not in _ID_DTYPES or (dtype == np.uint16 and mask.shape[1] > _UINT16_ACTIONS):
        raise ValueError(f"{mask.shape[1]:,} actions cannot be stored as {dtype} ids; use id_dtype(A)")
    # One pass over the flat mask (2-D np.nonzero is ~10x slower): row-major, so each row's ids
    # come out ascending and the rows in order.
    rows, cols = np.divmod(np.flatnonzero(mask), mask.shape[1])
    counts = np.bincount(rows, minlength=len(mask))
    if len(mask) and counts.max() > width:
        row = int(np.argmax(counts))
        raise SchemaError(
            f"next_action_mask row {row} allows {int(counts[row])} actions, more than the {width} ids a "
            "replay row holds (the env's max_allowed_actions()): the env must declare a bound no "
            "smaller than any mask it reports"
        )
    position = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.full((len(mask), width), _pad(dtype), dtype=dtype)
    out[rows, position] = cols
    return out


def ids_to_masks(ids: np.ndarray, num_actions: int) -> np.ndarray:
    """[B, W] ids padded with PAD (as `mask_ids` writes them) -> bool [B, num_actions].

    SchemaError for an id outside [0, num_actions) other than PAD: the rows were written
    for another action space.
    """
    ids = np.asarray(ids)
    valid = ids != _pad(ids.dtype)
    rows, slots = np.nonzero(valid)
    cols = ids[rows, slots].astype(np.intp)
    bad = cols[(cols < 0) | (cols >= num_actions)]
    if len(bad):
        raise SchemaError(
            f"next_action_mask holds action id {int(bad[0])}, outside the {num_actions:,} actions of "
            "this env: the replay was filled for another env"
        )
    out = np.zeros((len(ids), num_actions), dtype=bool)
    out[rows, cols] = True
    return out


def unpack_masks(mask: np.ndarray | None, num_actions: int) -> np.ndarray | None:
    """bool [B, num_actions] from masks in any replay form (None stays None, bool is returned as is)."""
    if mask is None or mask.dtype == np.bool_:
        return mask
    if mask.dtype == np.uint8:
        return np.unpackbits(mask, axis=1, count=num_actions).astype(bool)
    if mask.dtype in _ID_DTYPES:
        return ids_to_masks(mask, num_actions)
    raise SchemaError(
        f"next_action_mask has dtype {mask.dtype}; replay reads bool, packed uint8 or uint16/int32 "
        "ids (textdqn/masks.py): encode masks with MaskFormat.encode"
    )


@dataclasses.dataclass(frozen=True)
class MaskFormat:
    """How one run's replay stores the masks of an env's action space (see `choose_mask_format`).

    kind: "packed" (uint8, 8 actions a byte) or "ids" (`width` ids of dtype `id_dtype(num_actions)`).
    num_actions: A, the size of the action space.
    width: ids a row holds (kind "ids"); 0 for "packed".
    """

    kind: Literal["packed", "ids"]
    num_actions: int
    width: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("packed", "ids"):
            raise ValueError(f"MaskFormat.kind must be 'packed' or 'ids', got {self.kind!r}")
        if self.num_actions < 1 or (self.kind == "ids") != (self.width >= 1):
            raise ValueError(f"invalid {self}: ids need a width >= 1, packed none, and num_actions >= 1")

    @property
    def row_bytes(self) -> int:
        """Bytes one row's mask takes in replay."""
        if self.kind == "packed":
            return -(-self.num_actions // 8)
        return self.width * id_dtype(self.num_actions).itemsize

    def encode(self, mask: np.ndarray) -> np.ndarray:
        """bool [B, num_actions] -> this form (SchemaError if a row allows more than `width`)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2 or mask.shape[1] != self.num_actions:
            raise SchemaError(f"masks of shape {mask.shape} given to a format of {self.num_actions} actions")
        return pack_masks(mask) if self.kind == "packed" else mask_ids(mask, self.width)


def choose_mask_format(num_actions: int, max_allowed: int | None = None) -> MaskFormat:
    """The smaller of the packed and id forms for `num_actions` actions of which at most
    `max_allowed` are ever valid at once (None: unknown, so packed, which holds any mask).

    The id form wins when max_allowed ids take fewer bytes than ceil(A / 8): e.g. 77 of
    49,152 actions (154 bytes against 6,144); a dialogue's 25 acts stay packed (4 bytes).
    """
    if num_actions < 1:
        raise ValueError(f"an action space needs >= 1 action, got {num_actions}")
    packed = MaskFormat("packed", num_actions)
    if max_allowed is None:
        return packed
    if max_allowed < 1:
        raise ValueError(f"max_allowed = {max_allowed} must be >= 1 (or None when unknown)")
    ids = MaskFormat("ids", num_actions, min(int(max_allowed), num_actions))
    return ids if ids.row_bytes < packed.row_bytes else packed
