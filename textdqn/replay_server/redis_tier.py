"""The durable tier of a replay shard: its rows, leaves and cursor in Redis, as raw bytes.

The shard samples from its memory copy and sum-tree; this tier makes them survive the
shard. Inserts are written through (one MULTI/EXEC holding the new rows of every field,
their sum-tree leaves and the cursor, so Redis never holds a cursor without its rows);
priority updates are written behind in pages of leaves. Nothing read back is unpickled:
rows are numpy bytes described by a JSON schema.

Layout, all under ``textdqn:{<run id>:<shard index>}:`` (a Redis Cluster hash tag, so one
shard's keys share a slot and a transaction):

  meta                   hash: format, run_id, index, capacity, alpha, priority_eps, schema
                         (JSON {field: [dtype, shape]}), block_rows, leaf_block, next_key,
                         max_priority, samples, updates, stale_updates
  rows:<block>           string: slots [block * block_rows, ...) as packed records, one
                         record per slot holding every field's bytes in schema order
  leaves:<block>         string: float64 leaves of slots [block * leaf_block, ...)

Keys (slot, generation) are not stored: the live items are the newest `capacity` keys
below next_key, so each slot's key follows from next_key and capacity (`slot_keys`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from textdqn.errors import ReplayStorageError
from textdqn.replay_server.redis_connection import (
    RedisSpec,
    connect,
    hset,
    redact_url,
    redis_spec,
    send_transaction,
    storage_error,
)
from textdqn.types import Schema

__all__ = ["RedisSpec", "RedisTier", "Restored", "inspect_shards", "redact_url", "redis_spec", "slot_keys"]

FORMAT = "textdqn.replay_shard.redis/1"
BLOCK_BYTES = 8 << 20
"""Largest row block, in bytes: far below Redis's 512 MB string limit (a 6 KB row still gets
1,365 rows a block). A block is zero-filled by Redis when first written, so smaller blocks
spread that cost over the inserts that fill them."""
LEAF_BLOCK = 1 << 21
"""Leaves per leaf block (16 MB of float64)."""
PAGE = 512
"""Leaves per dirty page of the priority flush (4 KB)."""
_META_KEYS = ("format", "capacity", "alpha", "schema", "block_rows", "leaf_block", "next_key", "max_priority")
_RESET_HINT = (
    "delete them (redis-cli -u URL --scan --pattern '{pattern}' | xargs redis-cli -u URL del), "
    "or use another run id"
)


def slot_keys(next_key: int, capacity: int) -> np.ndarray:
    """The key of each occupied slot: the newest key k < next_key with k % capacity == slot."""
    size = min(next_key, capacity)
    slots = np.arange(size, dtype=np.int64)
    if next_key <= capacity:
        return slots
    base = next_key - capacity
    return base + (slots - base) % capacity


@dataclasses.dataclass
class Restored:
    """What a tier held at start-up: the first `size` rows and leaves, and the meta."""

    schema: Schema
    fields: dict[str, np.ndarray]
    leaves: np.ndarray
    next_key: int
    max_priority: float
    counters: dict[str, int]


def _schema_json(schema: Schema) -> str:
    return json.dumps({k: [d, list(s)] for k, (d, s) in schema.items()})


def record_dtype(schema: Schema) -> np.dtype:
    """The packed numpy record of one slot: every field of `schema`, in its order."""
    return np.dtype([(name, np.dtype(dtype), shape) for name, (dtype, shape) in schema.items()])


def _block_rows(schema: Schema, capacity: int) -> int:
    """Records per block: as many as fit in BLOCK_BYTES, at most capacity."""
    return max(1, min(capacity, BLOCK_BYTES // max(1, record_dtype(schema).itemsize)))


def _escape_glob(text: str) -> str:
    """`text` with Redis glob metacharacters escaped, for SCAN MATCH."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _segments(start: int, count: int, block: int, capacity: int) -> Iterator[tuple[int, int, int, int]]:
    """(block index, first slot, row offset into the data, rows) of `count` rows written at
    slots start, start+1, ... (mod capacity), split at the ring's end and block borders."""
    done = 0
    while done < count:
        slot = (start + done) % capacity
        b = slot // block
        n = min(count - done, (b + 1) * block - slot, capacity - slot)
        yield b, slot, done, n
        done += n


class RedisTier:
    """One shard's keys in Redis; the shard calls it under its lock.

    Args:
        spec: where the keys live.
        capacity, alpha, priority_eps: the shard's; a restart must use the same capacity and alpha.
    """

    def __init__(self, spec: RedisSpec, capacity: int, alpha: float, priority_eps: float) -> None:
        self.spec = spec
        self.capacity = int(capacity)
        self.alpha = float(alpha)
        self.priority_eps = float(priority_eps)
        self.url = redact_url(spec.url)
        self.schema: Schema | None = None
        self.block_rows = 0
        self._row_alloc: set[int] = set()  # blocks created in Redis at their full length
        self._leaf_alloc: set[int] = set()
        self._client = connect(spec.url, spec.password, spec.password_env)

    def key(self, name: str) -> str:
        return self.spec.prefix + name

    def _redis(self, doing: str, fn: Any) -> Any:
        """fn(client), with every redis-py error turned into a ReplayStorageError."""
        import redis

        spec = self.spec
        if self._client is None:
            raise ReplayStorageError(f"the replay shard on {self.url} was closed; build a new one")
        try:
            return fn(self._client)
        except redis.RedisError as e:
            raise storage_error(e, spec.url, spec.password, spec.password_env, doing) from e

    # --- start-up ---

    def load(self) -> Restored | None:
        """What the keys hold (None when they are fresh, after claiming them with a meta)."""
        meta = self._redis("reading the shard's meta", lambda r: self._read_meta(r))
        if meta is None:
            self._claim()
            return None
        self._expect(meta)
        if meta["schema"] == "null":
            return None
        self.schema = self._parse_schema(meta["schema"])
        try:
            self.block_rows, next_key = int(meta["block_rows"]), int(meta["next_key"])
            max_priority = float(meta["max_priority"])
            counters = {k: int(meta.get(k, 0)) for k in ("samples", "updates", "stale_updates")}
        except ValueError as e:
            raise self._corrupt("meta", f"holds a malformed number ({e})") from e
        if self.block_rows < 1 or next_key < 0:
            raise self._corrupt("meta", f"has block_rows {self.block_rows}, next_key {next_key}")
        size = min(next_key, self.capacity)
        self._row_alloc = set(range(math.ceil(size / self.block_rows)))
        self._leaf_alloc = set(range(math.ceil(size / LEAF_BLOCK)))
        records = self._read_blocks("rows", record_dtype(self.schema), self.block_rows, size)
        fields = {name: records[name] for name in self.schema}
        leaves = self._read_blocks("leaves", np.dtype("<f8"), LEAF_BLOCK, size)
        if not (np.all(np.isfinite(leaves)) and np.all(leaves >= 0)):
            raise self._corrupt("leaves:*", "holds negative or non-finite leaves")
        return Restored(self.schema, fields, leaves, next_key, max_priority, counters)

    def _read_meta(self, r: Any) -> dict[str, str] | None:
        import redis

        try:
            raw = r.hgetall(self.key("meta"))
        except redis.ResponseError as e:  # WRONGTYPE: not a hash, so not ours
            raise self._corrupt("meta", f"is not a textdqn meta hash ({e})") from e
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()} or None

    def _claim(self) -> None:
        """Write a fresh meta, unless something else already uses our prefix."""
        pattern = _escape_glob(self.spec.prefix) + "*"
        found = self._redis(
            "scanning the shard's keys", lambda r: next(r.scan_iter(pattern, count=1000), None)
        )
        if found is not None:
            raise self._corrupt(
                found.decode(errors="replace"), "exists but the shard has no meta hash", full=True
            )
        meta: dict[str, Any] = {
            "format": FORMAT,
            "run_id": self.spec.run_id,
            "index": self.spec.index,
            "capacity": self.capacity,
            "alpha": repr(self.alpha),
            "priority_eps": repr(self.priority_eps),
            "schema": "null",
            "block_rows": 0,
            "leaf_block": LEAF_BLOCK,
            "next_key": 0,
            "max_priority": repr(1.0),
            "samples": 0,
            "updates": 0,
            "stale_updates": 0,
        }
        self._redis("writing the shard's meta", lambda r: r.hset(self.key("meta"), mapping=meta))

    def _expect(self, meta: dict[str, str]) -> None:
        if meta.get("format") != FORMAT:
            raise self._corrupt("meta", f"has format {meta.get('format')!r}, not {FORMAT!r}")
        missing = sorted(set(_META_KEYS) - set(meta))
        if missing:
            raise self._corrupt("meta", f"lacks the fields {missing}")
        if meta["leaf_block"] != str(LEAF_BLOCK):
            raise self._corrupt(
                "meta", f"has leaf_block {meta['leaf_block']}, this version uses {LEAF_BLOCK}"
            )
        for name, ours, setting in (
            ("capacity", self.capacity, "replay.capacity and replay.num_shards"),
            ("alpha", self.alpha, "replay.alpha"),
        ):
            try:
                theirs = type(ours)(meta[name])  # float(repr(x)) == x
            except ValueError as e:
                raise self._corrupt("meta", f"holds a malformed {name} ({e})") from e
            if theirs != ours:
                raise ReplayStorageError(
                    f"Redis key {self.key('meta')} on {self.url} was written by a shard with {name}="
                    f"{theirs}, this shard has {name}={ours}: restart with the same {setting}, or "
                    + _RESET_HINT.format(pattern=self.spec.prefix + "*")
                )

    def _parse_schema(self, text: str) -> Schema:
        try:
            schema = {k: (str(d), tuple(int(x) for x in s)) for k, (d, s) in json.loads(text).items()}
            for dtype, _ in schema.values():
                np.dtype(dtype)
        except (ValueError, TypeError, AttributeError) as e:
            raise self._corrupt("meta", f"holds an unreadable schema {text[:200]!r} ({e})") from e
        return schema

    def _read_blocks(self, stem: str, dtype: np.dtype, block: int, size: int) -> np.ndarray:
        """Rows 0..size-1 of blocks `stem`:0, 1, ..., checked for presence and length."""
        count = math.ceil(size / block)
        keys = [self.key(f"{stem}:{b}") for b in range(count)]
        blobs = self._redis(f"reading {stem}", lambda r: r.mget(keys) if keys else [])
        row = dtype.itemsize
        parts = []
        for b, (key, blob) in enumerate(zip(keys, blobs, strict=True)):
            rows = min(block, self.capacity - b * block)
            if blob is None or len(blob) != rows * row:
                got = "is missing" if blob is None else f"holds {len(blob)} bytes, expected {rows * row}"
                raise self._corrupt(key[len(self.spec.prefix) :], got)
            parts.append(np.frombuffer(blob, dtype=dtype))
        if not parts:
            return np.zeros(0, dtype=dtype)
        whole = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return whole[:size]

    def _corrupt(self, key: str, what: str, full: bool = False) -> ReplayStorageError:
        name = key if full else self.key(key)
        return ReplayStorageError(
            f"Redis key {name} on {self.url} {what}: these keys were not written by a textdqn replay "
            "shard of this version, or are damaged; "
            + _RESET_HINT.format(pattern=self.spec.prefix + "*")
            + ", or restore the run from a checkpoint"
        )

    # --- writes ---

    def write_insert(
        self, slot: int, fields: dict[str, np.ndarray], leaves: np.ndarray, next_key: int, max_priority: float
    ) -> Callable[[], None]:
        """Send rows at slots slot, slot+1, ... (mod capacity), their leaves and the new cursor
        as one transaction; returns `wait`, which returns once Redis holds them (and raises
        ReplayStorageError if it does not)."""
        meta: dict[str, Any] = {"next_key": int(next_key), "max_priority": repr(float(max_priority))}
        schema, block_rows = self.schema, self.block_rows
        if schema is None:
            schema = {k: (v.dtype.str, tuple(v.shape[1:])) for k, v in fields.items()}
            block_rows = _block_rows(schema, self.capacity)
            meta.update(schema=_schema_json(schema), block_rows=block_rows)

        commands: list[tuple] = []
        records = np.empty(len(leaves), dtype=record_dtype(schema))
        for name, values in fields.items():
            records[name] = values
        new_rows = self._queue_blocks(commands, "rows", block_rows, slot, records, self._row_alloc)
        leaves = np.asarray(leaves, dtype="<f8")
        new_leaves = self._queue_blocks(commands, "leaves", LEAF_BLOCK, slot, leaves, self._leaf_alloc)
        commands.append(hset(self.key("meta"), meta))
        doing = f"inserting {len(leaves)} items"
        receive = self._redis(doing, lambda r: send_transaction(r, commands))

        def wait() -> None:
            self._redis(doing, lambda r: receive())
            self.schema, self.block_rows = schema, block_rows
            self._row_alloc |= new_rows
            self._leaf_alloc |= new_leaves

        return wait

    def write_leaves(self, starts: list[int], leaves: list[np.ndarray], meta: dict[str, Any]) -> None:
        """Write runs of leaves (leaves[i] at slots starts[i], ...) and `meta` in one transaction."""

        commands: list[tuple] = []
        new: set[int] = set()
        for start, values in zip(starts, leaves, strict=True):
            values = np.asarray(values, dtype="<f8")
            new |= self._queue_blocks(commands, "leaves", LEAF_BLOCK, start, values, self._leaf_alloc | new)
        commands.append(hset(self.key("meta"), meta))
        self._redis("flushing priority updates", lambda r: send_transaction(r, commands)())
        self._leaf_alloc |= new

    def rewrite(self, restored: Restored) -> None:
        """Replace everything under the prefix with `restored`, whose rows and leaves are by slot
        from slot 0 (after a shard restored a disk checkpoint)."""
        pattern = _escape_glob(self.spec.prefix) + "*"
        old = self._redis("listing the shard's keys", lambda r: list(r.scan_iter(pattern, count=1000)))
        if old:
            self._redis("deleting the shard's old keys", lambda r: r.delete(*old))
        self.schema, self.block_rows = None, 0
        self._row_alloc, self._leaf_alloc = set(), set()
        self._claim()
        if len(restored.leaves):
            self.write_insert(0, restored.fields, restored.leaves, restored.next_key, restored.max_priority)()
        meta = {"next_key": restored.next_key, "max_priority": repr(float(restored.max_priority))}
        self.write_leaves([], [], {**meta, **restored.counters})

    def _queue_blocks(
        self, commands: list[tuple], stem: str, block: int, slot: int, values: np.ndarray, allocated: set[int]
    ) -> set[int]:
        """Append to `commands` the SETRANGEs writing `values` (rows) at `slot`.. into blocks of `block` rows;
        returns the blocks it creates. A new block is created at its full length (one byte
        written at its end) so that Redis never regrows a string batch by batch."""
        data = memoryview(np.ascontiguousarray(values)).cast("B")
        row = data.nbytes // max(1, len(values))
        created = set()
        for b, first, offset, n in _segments(slot, len(values), block, self.capacity):
            key = self.key(f"{stem}:{b}")
            if b not in allocated and b not in created:
                commands.append(("SETRANGE", key, min(block, self.capacity - b * block) * row - 1, b"\0"))
                created.add(b)
            commands.append(
                ("SETRANGE", key, (first - b * block) * row, data[offset * row : (offset + n) * row])
            )
        return created

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def inspect_shards(url: str, password: str = "", run_id: str | None = None) -> list[dict[str, Any]]:
    """Every textdqn replay shard stored at `url` (only run `run_id`'s when given): run id,
    index, size, capacity, counters, schema and statistics of its leaves, sorted by run and index."""
    import redis

    client = connect(url, password)
    pattern = "textdqn:{" + (_escape_glob(run_id) + ":" if run_id else "") + "*}:meta"
    shards = []
    try:
        for key in client.scan_iter(pattern, count=1000):
            name = key.decode(errors="replace")
            found = re.fullmatch(r"textdqn:\{(.*):(\d+)\}:meta", name)
            if found is None or client.type(key) != b"hash":
                continue  # not a shard's meta
            meta = {
                k.decode(errors="replace"): v.decode(errors="replace") for k, v in client.hgetall(key).items()
            }
            if meta.get("format") == FORMAT:
                shards.append(
                    {"run_id": found.group(1), "index": int(found.group(2)), **_summary(client, name, meta)}
                )
    except redis.RedisError as e:
        raise storage_error(e, url, password, "", "listing replay shards") from e
    finally:
        client.close()
    return sorted(shards, key=lambda s: (s["run_id"], s["index"]))


def _summary(client: Any, name: str, meta: dict[str, str]) -> dict[str, Any]:
    """Size, counters, schema and leaf statistics of the shard whose meta hash is `name`."""
    try:
        size = min(int(meta["next_key"]), int(meta["capacity"]))
        blocks = [name[: -len("meta")] + f"leaves:{b}" for b in range(math.ceil(size / LEAF_BLOCK))]
        blobs = client.mget(blocks) if blocks else []
        leaves = np.concatenate([np.frombuffer(b or b"", dtype="<f8") for b in blobs] or [np.zeros(0)])[:size]
        stats = (leaves.min(), leaves.mean(), leaves.max()) if len(leaves) else (0.0, 0.0, 0.0)
        return {
            "size": size,
            "capacity": int(meta["capacity"]),
            "inserts": int(meta["next_key"]),
            "samples": int(meta.get("samples", 0)),
            "priority_updates": int(meta.get("updates", 0)),
            "alpha": float(meta["alpha"]),
            "schema": json.loads(meta["schema"]) or {},
            "leaves": {
                "total": float(leaves.sum()),
                **{k: float(v) for k, v in zip(("min", "mean", "max"), stats, strict=True)},
            },
        }
    except (KeyError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise ReplayStorageError(
            f"Redis key {name} looks like a textdqn replay shard's meta but is damaged ({e!r}); "
            "inspect it with redis-cli, or delete the shard's keys"
        ) from e
