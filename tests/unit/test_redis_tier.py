"""A ReplayShard with its durable tier on a real redis-server: reloads, write-behind
priorities, wrap-around, and the clear errors for keys, URLs and passwords that do not fit."""

import os
import pickle
import re
import shutil
import signal
import socket
import uuid

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import make_batch
from textdqn.cli import app
from textdqn.config import ReplayConfig
from textdqn.errors import ReplayStorageError, SchemaError
from textdqn.masks import choose_mask_format, unpack_masks
from textdqn.replay_server import ReplayShard, redis_tier
from textdqn.replay_server.redis_tier import RedisSpec, redact_url, redis_spec, slot_keys
from textdqn.types import TransitionBatch

NO_REDIS = "redis-server is not on PATH (apt-get install redis-server)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from textdqn.replay_server.redis_server import LocalRedisServer

    if shutil.which("redis-server") is None:
        pytest.skip(NO_REDIS)
    with LocalRedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def spec(server):
    """A fresh run id (so fresh keys) on the shared server; no background flush unless asked."""
    return RedisSpec(server.url, f"t{uuid.uuid4().hex[:12]}", 0, flush_s=3600.0)


@pytest.fixture
def client(server):
    import redis

    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.fixture
def shards():
    """Shards built by a test, closed after it."""
    built = []
    yield lambda *args, **kwargs: built.append(ReplayShard(*args, **kwargs)) or built[-1]
    for shard in built:
        shard.close()


def same_state(a: ReplayShard, b: ReplayShard) -> None:
    size = a.info().size
    assert b.info().size == size and b.info().inserts == a.info().inserts
    np.testing.assert_array_equal(b._keys, a._keys)
    np.testing.assert_array_equal(b._tree.leaves(), a._tree.leaves())
    assert b._tree.total == pytest.approx(a._tree.total, rel=1e-12)
    for name, rows in a._storage.arrays(size).items():
        np.testing.assert_array_equal(b._storage.arrays(size)[name], rows)


def test_a_second_shard_on_the_same_keys_holds_identical_items_keys_and_leaves(spec, shards):
    first = shards(100, alpha=0.6, durable=spec)
    first.insert(make_batch(0, 30, with_priority=True))
    first.insert(make_batch(30, 25))  # no priorities: the max seen so far
    second = shards(100, alpha=0.6, durable=spec)
    same_state(first, second)
    assert second.info().restored_items == 55 and first.info().restored_items == 0
    a, b = first.sample(64), shards(100, alpha=0.6, durable=spec).sample(64)
    np.testing.assert_array_equal(a.keys, b.keys)
    np.testing.assert_array_equal(b.batch.obs[:, 0], b.keys)  # the rows still encode their keys


def test_flushed_priorities_reach_redis_and_a_restart_sees_exactly_those(spec, shards, client):
    shard = shards(8, alpha=1.0, priority_eps=0.5, durable=spec)
    shard.insert(make_batch(0, 8))
    shard.update_priorities(np.array([1, 6]), np.array([3.0, 7.0]))
    shard.flush()
    flushed = shard._tree.leaves()
    stored = np.frombuffer(client.get(spec.prefix + "leaves:0"), dtype="<f8")
    np.testing.assert_array_equal(stored, flushed)
    assert stored[1] == 3.5 and stored[6] == 7.5
    shard.update_priorities(np.array([2]), np.array([9.0]))  # not flushed
    restarted = shards(8, alpha=1.0, priority_eps=0.5, durable=spec)
    np.testing.assert_array_equal(restarted._tree.leaves(), flushed)
    assert restarted.info().priority_updates == 2  # counters as of the last flush


def test_the_background_flusher_writes_within_flush_s(server, client, shards):
    import time

    spec = RedisSpec(server.url, f"t{uuid.uuid4().hex[:12]}", 3, flush_s=0.05)
    shard = shards(16, alpha=1.0, priority_eps=1.0, durable=spec)
    shard.insert(make_batch(0, 16))
    shard.update_priorities(np.array([5]), np.array([4.0]))
    deadline = time.monotonic() + 5
    while np.frombuffer(client.get(spec.prefix + "leaves:0"), dtype="<f8")[5] != 5.0:
        assert time.monotonic() < deadline, "the flusher did not write the update"
        time.sleep(0.01)
    assert shard.info().durable_flushes >= 1 and shard.info().durable_flush_errors == 0


@pytest.mark.parametrize("sizes", [[7, 6, 9], [25], [3, 10, 10, 1]])
def test_fifo_wrap_around_survives_a_reload_and_carries_on(spec, shards, sizes):
    shard, reference, start = shards(10, durable=spec), ReplayShard(10), 0
    for n in sizes:
        shard.insert(make_batch(start, n, with_priority=True))
        reference.insert(make_batch(start, n, with_priority=True))
        start += n
    reloaded = shards(10, durable=spec)
    same_state(reference, reloaded)
    np.testing.assert_array_equal(reloaded._keys, slot_keys(start, 10))
    reloaded.insert(make_batch(start, 4, with_priority=True))
    reference.insert(make_batch(start, 4, with_priority=True))
    same_state(reference, shards(10, durable=spec))


def test_rows_and_leaves_spanning_several_blocks(spec, shards, monkeypatch):
    monkeypatch.setattr(redis_tier, "BLOCK_BYTES", 7 * 132)  # 7 records of 132 bytes a block
    monkeypatch.setattr(redis_tier, "LEAF_BLOCK", 16)
    shard = shards(50, alpha=1.0, durable=spec)
    shard.insert(make_batch(0, 37, obs_dim=14, with_priority=True))
    shard.insert(make_batch(37, 30, obs_dim=14, with_priority=True))
    shard.update_priorities(np.arange(20, 67), np.linspace(0, 5, 47))
    shard.flush()
    assert shard._tier.block_rows == 7
    same_state(shard, shards(50, alpha=1.0, durable=spec))


def test_restore_from_a_checkpoint_rewrites_the_durable_tier(spec, shards, tmp_path):
    memory = ReplayShard(12)
    memory.insert(make_batch(0, 17, with_priority=True))
    memory.checkpoint(tmp_path)
    durable = shards(12, durable=spec)
    durable.insert(make_batch(500, 3, obs_dim=2))  # replaced, schema included, by the restore
    durable.restore(tmp_path)
    same_state(memory, shards(12, durable=spec))


def test_masks_stored_as_ids_survive_a_reload(spec, shards):
    mask = np.zeros((7, 49_152), dtype=bool)
    mask[np.arange(7), 1000 * np.arange(7) + 5] = True  # row t allows 1000 t + 5 and, if odd, 3
    mask[1::2, 3] = True
    ids = choose_mask_format(49_152, 2).encode(mask)
    first = shards(10, durable=spec)
    first.insert(TransitionBatch(**{**make_batch(0, 7).fields(), "next_action_mask": ids}))
    reloaded = shards(10, durable=spec)
    same_state(first, reloaded)
    stored = reloaded._storage.arrays(7)["next_action_mask"]
    assert stored.dtype == np.uint16 and stored.shape == (7, 2)
    np.testing.assert_array_equal(unpack_masks(stored, 49_152), mask)


def test_a_batch_of_another_schema_after_a_reload_is_a_schema_error(spec, shards):
    shards(10, durable=spec).insert(make_batch(0, 5))
    reloaded = shards(10, durable=spec)
    with pytest.raises(SchemaError, match="field 'obs'"):
        reloaded.insert(make_batch(5, 5, obs_dim=8))
    assert reloaded.info().inserts == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"capacity": 12},
            r"capacity=10, this shard has capacity=12: restart with the same replay\.capacity",
        ),
        (
            {"capacity": 10, "alpha": 0.5},
            r"alpha=0\.6, this shard has alpha=0\.5: restart with the same replay\.alpha",
        ),
    ],
)
def test_keys_of_a_shard_with_another_capacity_or_alpha_are_refused(spec, shards, kwargs, message):
    shards(10, alpha=0.6, durable=spec).insert(make_batch(0, 3))
    with pytest.raises(ReplayStorageError, match=message) as info:
        ReplayShard(**{"alpha": 0.6, **kwargs}, durable=spec)
    assert "redis-cli" in str(info.value) and spec.prefix + "meta" in str(info.value)


@pytest.mark.parametrize(
    ("written", "damage", "key", "what"),
    [
        (
            False,
            lambda c, p: c.set(p + "something", b"x"),
            "something",
            "exists but the shard has no meta hash",
        ),
        (False, lambda c, p: c.set(p + "meta", b"x"), "meta", "is not a textdqn meta hash"),
        (True, lambda c, p: c.hset(p + "meta", "format", "other/1"), "meta", "has format 'other/1'"),
        (True, lambda c, p: c.hdel(p + "meta", "next_key"), "meta", "lacks the fields ['next_key']"),
        (True, lambda c, p: c.hset(p + "meta", "schema", "{not json"), "meta", "holds an unreadable schema"),
        (True, lambda c, p: c.delete(p + "rows:0"), "rows:0", "is missing"),
        (True, lambda c, p: c.setrange(p + "leaves:0", 80, b"x"), "leaves:0", "holds 81 bytes, expected 80"),
    ],
)
def test_foreign_or_damaged_keys_are_one_clear_error(spec, shards, client, written, damage, key, what):
    if written:
        shards(10, durable=spec).insert(make_batch(0, 4))
    damage(client, spec.prefix)
    with pytest.raises(ReplayStorageError) as info:
        ReplayShard(10, durable=spec)
    message = str(info.value)
    assert f"Redis key {spec.prefix}{key} on {redact_url(spec.url)} {what}" in message
    assert f"--pattern '{spec.prefix}*'" in message and "another run id" in message
    assert spec.url not in message


def test_an_unreachable_url_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once it is closed
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    with pytest.raises(ReplayStorageError) as info:
        ReplayShard(10, durable=RedisSpec(url, "run", 0))
    message = str(info.value)
    assert f"Redis at redis://:***@127.0.0.1:{port}/0 failed while answering PING" in message
    assert "start redis-server" in message and "hunter2" not in message


def test_a_wrong_or_missing_password_names_the_fix_and_never_the_password(server):
    port = re.search(r":(\d+)/", server.url).group(1)
    with pytest.raises(ReplayStorageError) as info:
        ReplayShard(10, durable=RedisSpec(f"redis://:wrong-secret@127.0.0.1:{port}/0", "run", 0))
    assert "wrong-secret" not in str(info.value) and "redis://:***@127.0.0.1" in str(info.value)
    assert "set the password" in str(info.value)
    with pytest.raises(ReplayStorageError, match="set the password in the environment variable MY_REDIS_PW"):
        ReplayShard(
            10, durable=RedisSpec(f"redis://127.0.0.1:{port}/0", "run", 0, password_env="MY_REDIS_PW")
        )


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=NO_REDIS)
def test_a_redis_killed_mid_run_makes_insert_raise_naming_the_url(tmp_path):
    from textdqn.replay_server.redis_server import LocalRedisServer

    with LocalRedisServer(tmp_path) as doomed:
        shard = ReplayShard(10, durable=RedisSpec(doomed.url, "run", 0, flush_s=3600.0))
        shard.insert(make_batch(0, 12, with_priority=True))  # full: the next insert evicts items
        before = ReplayShard(10)
        before.insert(make_batch(0, 12, with_priority=True))
        os.kill(doomed.pid, signal.SIGKILL)
        doomed._proc.wait()
        with pytest.raises(ReplayStorageError) as info:
            shard.insert(make_batch(12, 4))
        message = str(info.value)
        assert redact_url(doomed.url) in message and "failed while inserting 4 items" in message
        assert doomed.url not in message and doomed.url.split("@")[0].split(":")[-1] not in message
        assert isinstance(info.value.__cause__, Exception)  # chained from redis-py's error
        same_state(before, shard)  # the failed insert left the memory copy as it was
        assert shard._max_priority == before._max_priority
        with pytest.raises(ReplayStorageError):
            shard.close()  # its final flush cannot reach Redis either


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=NO_REDIS)
def test_an_insert_redis_refuses_leaves_memory_and_redis_as_they_were(tmp_path):
    import redis

    from textdqn.replay_server.redis_server import LocalRedisServer

    with LocalRedisServer(tmp_path) as server:
        spec = RedisSpec(server.url, "run", 0, flush_s=3600.0)
        shard, fresh = ReplayShard(10, durable=spec), ReplayShard(10, durable=RedisSpec(server.url, "run", 1))
        shard.insert(make_batch(0, 12, with_priority=True))
        before = ReplayShard(10)
        before.insert(make_batch(0, 12, with_priority=True))
        admin = redis.Redis.from_url(server.url)
        admin.config_set("maxmemory", 1)  # every write is refused (OOM) once the rows are sent
        with pytest.raises(ReplayStorageError, match="failed while inserting 4 items: command not allowed"):
            shard.insert(make_batch(12, 4, with_priority=True))
        with pytest.raises(ReplayStorageError, match="maxmemory"):
            fresh.insert(make_batch(0, 4))
        same_state(before, shard)  # the evicted rows, leaves and keys are back
        admin.config_set("maxmemory", 0)
        for s in (shard, before):
            s.insert(make_batch(12, 4, with_priority=True))
        same_state(before, ReplayShard(10, durable=spec))  # and Redis agrees with memory
        fresh.insert(make_batch(0, 4, obs_dim=6))  # the refused first insert fixed no schema
        assert fresh._storage.schema["obs"] == ("<f4", (6,))
        admin.close()
        for s in (shard, fresh):
            s.close()


def test_inspect_lists_every_shard_of_a_run_without_the_password(spec, shards, server):
    shard = shards(10, alpha=1.0, priority_eps=1.0, durable=spec)
    shard.insert(make_batch(0, 4, with_priority=True))
    shards(20, durable=RedisSpec(server.url, spec.run_id, 1)).insert(make_batch(0, 3))
    result = CliRunner().invoke(app, ["replay", "inspect", server.url, "--run", spec.run_id])
    assert result.exit_code == 0, result.output
    assert f"replay shard 0 of run {spec.run_id}" in result.output and "shard 1 of" in result.output
    assert re.search(r"size / capacity +│ 4 / 10 ", result.output)
    assert re.search(r"total priority +│ 14 ", result.output)  # leaves 2+3+4+5
    assert re.search(r"min / mean / max +│ 2 / 3.5 / 5 ", result.output)
    assert re.search(r"field obs +│ <f4 \(4,\)", result.output) and "3 / 20" in result.output
    assert server.url.split("@")[0].split(":")[-1] not in result.output and "***" in result.output
    other = CliRunner().invoke(app, ["replay", "inspect", server.url, "--run", "nobody"])
    assert other.exit_code == 0 and "no textdqn replay shards" in other.output


def test_inspect_skips_foreign_keys_and_names_a_damaged_meta(server, client):
    run = f"t{uuid.uuid4().hex[:12]}"
    client.set(f"textdqn:{{{run}:0}}:meta", b"not a hash")
    assert redis_tier.inspect_shards(server.url, run_id=run) == []
    client.hset(f"textdqn:{{{run}:1}}:meta", mapping={"format": redis_tier.FORMAT, "next_key": "x"})
    result = CliRunner().invoke(app, ["replay", "inspect", server.url, "--run", run])
    assert result.exit_code == 2
    assert f"textdqn:{{{run}:1}}:meta looks like a textdqn replay shard's meta but is damaged" in " ".join(
        result.output.split()
    )


def test_redact_url_hides_only_the_password():
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://user:p%40ss@h:6380/1") == "rediss://user:***@h:6380/1"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact_url("unix:///var/run/redis.sock?db=2") == "unix:///var/run/redis.sock?db=2"


def test_redis_spec_resolves_the_password_and_never_shows_it(monkeypatch):
    assert redis_spec(ReplayConfig(), "run", 0) is None
    config = ReplayConfig(
        storage="redis", redis_url="redis://h:1/0", redis_password_env="PW", redis_flush_s=0.5
    )
    monkeypatch.setenv("PW", "s3cret")
    spec = redis_spec(config, "run", 2)
    assert (spec.password, spec.index, spec.flush_s, spec.prefix) == ("s3cret", 2, 0.5, "textdqn:{run:2}:")
    assert "s3cret" not in repr(spec)
    assert redis_spec(config, "run", 0, url="redis://:inurl@h:1/0").password == ""  # the URL's wins
    monkeypatch.delenv("PW")
    with pytest.raises(ReplayStorageError, match="'PW', but that environment variable is not set"):
        redis_spec(config, "run", 0)
    local = ReplayConfig(storage="redis", redis_url="local")
    with pytest.raises(ReplayStorageError, match="LocalRedisServer"):
        redis_spec(local, "run", 0)
    with pytest.raises(ReplayStorageError, match="hash tag"):
        RedisSpec("redis://h", "run{1}", 0)


def test_a_spec_is_a_plain_value_ray_can_ship():
    spec = RedisSpec("rediss://db:6380/0", "run", 1, password="pw", password_env="PW", flush_s=0.5)
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_a_block_of_six_kilobyte_rows_stays_far_below_the_string_limit():
    schema = {"obs": ("<u2", (1024,)), "next_obs": ("<u2", (1024,)), "next_action_mask": ("|u1", (6283,))}
    rows = redis_tier._block_rows(schema, 10_000_000)
    record = redis_tier.record_dtype(schema).itemsize
    assert record == 2 * 2048 + 6283
    assert rows == (8 << 20) // record and rows * record <= 512 << 20 >> 6  # 8 MB, 1/64 of the limit
