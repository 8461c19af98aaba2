"""Durable replay, shown by killing real processes: a shard's Ray worker, the driver, a Ray
node, redis-server itself; and bad Redis input refused before any work starts."""

import json
import os
import shutil
import signal
import time
import uuid

import numpy as np
import pytest

from tests.conftest import make_batch
from tests.integration import processes
from textdqn.config import RateLimiterConfig, ReplayConfig

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs redis-server (apt-get install redis-server)"
    ),
]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    from textdqn.replay_server.redis_server import LocalRedisServer

    with LocalRedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _redis_config(**kw) -> ReplayConfig:
    return ReplayConfig(
        capacity=2000,
        num_shards=2,
        storage="redis",
        redis_url="local",
        rate_limiter=RateLimiterConfig(min_size_to_sample=1, timeout_s=10),
        **kw,
    )


def _state(ray, handle):
    """(info, keys, sum-tree leaves) of a shard actor."""
    return ray.get(handle.__ray_call__.remote(lambda s: (s.info(), s._keys.copy(), s._tree.leaves())))


def _pid(ray, handle) -> int:
    return ray.get(handle.__ray_call__.remote(lambda _: os.getpid()))


def test_a_killed_redis_shard_comes_back_with_its_items_keys_and_flushed_priorities(ray_local, redis_server):
    from textdqn.cluster.replay_service import RayShards, make_shards
    from textdqn.replay_server.client import ShardedSampler, ShardedWriter

    ray = ray_local
    config = _redis_config(redis_flush_s=3600.0)  # flushed only when asked, so "unflushed" is exact
    handles = make_shards(
        config, max_restarts=2, run_id=f"kill-{uuid.uuid4().hex[:8]}", redis_url=redis_server.url
    )
    shards = RayShards(handles)
    writer = ShardedWriter(shards)
    for step in range(30):  # 600 items per shard
        writer.insert(make_batch(step * 40, 40, with_priority=True))
    writer.flush()
    sampler = ShardedSampler(shards, batch_size=32, in_flight=1, seed=0)
    for _ in range(10):
        sample = sampler.sample(0.4)
        sampler.update_priorities(sample, np.full(32, 7.0))
    sampler.flush()
    ray.get([h.flush.remote() for h in handles])
    before_info, before_keys, flushed_leaves = _state(ray, handles[0])
    for _ in range(10):  # newer priorities that never reach Redis: lost with the process
        sample = sampler.sample(0.4)
        sampler.update_priorities(sample, np.full(32, 99.0))
    sampler.flush()

    pid = _pid(ray, handles[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 60
    while True:  # Ray restarts the actor, which reloads from Redis
        try:
            after_info, after_keys, after_leaves = _state(ray, handles[0])
            break
        except ray.exceptions.RayActorError:
            assert time.time() < deadline, "the killed shard did not come back"
            time.sleep(0.5)
    assert _pid(ray, handles[0]) != pid
    assert after_info.restored_items == before_info.size == 600
    assert (after_info.size, after_info.inserts) == (before_info.size, before_info.inserts)
    np.testing.assert_array_equal(after_keys, before_keys)
    np.testing.assert_array_equal(after_leaves, flushed_leaves)
    # The restarted shard serves samples and takes inserts again.
    writer.insert(make_batch(5000, 40))
    writer.insert(make_batch(6000, 40))
    writer.flush()
    assert sum(ray.get([h.info.remote() for h in handles])[i].size for i in range(2)) == 1280
    ray.get([h.close.remote() for h in handles])
    for h in handles:
        ray.kill(h)


def test_a_run_reaches_its_target_though_a_shard_process_is_killed(tmp_path):
    run = tmp_path / "run"
    proc = processes.train(run, "--set", "replay.storage=redis", "--set", "replay.redis_url=local")
    try:
        shard = processes.wait_for_descendant(proc.pid, "ray::ReplayShard", timeout=90)
        time.sleep(10)  # mid-run: the replay is filling and the learner training
        os.kill(shard, signal.SIGKILL)
        assert processes.finish(proc, timeout=400) == 0, processes.log_of(run)
    finally:
        processes.finish(proc, timeout=1)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reached_target"], summary["final_eval"]
    assert not processes.alive(shard)


def _sizes_in_snapshot(run) -> list[int]:
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    sizes = []
    for shard in sorted((run / "checkpoints" / latest["replay"]).iterdir()):
        meta = json.loads((shard / "replay_shard.json").read_text())
        sizes.append(min(meta["next_key"], meta["capacity"]))
    return sizes


def _sizes_in_redis(run) -> list[int]:
    from textdqn.replay_server.redis_server import LocalRedisServer
    from textdqn.replay_server.redis_tier import inspect_shards

    with LocalRedisServer(run / "redis") as server:  # the run's own append-only file
        shards = inspect_shards(server.url)
    return [s["size"] for s in sorted(shards, key=lambda s: s["index"])]


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_a_killed_driver_resumes_with_the_replay_it_held(tmp_path, storage):
    run = tmp_path / "run"
    options = ["--set", "stop.target_value=1000", "--set", "run.checkpoint_every_updates=300"]
    if storage == "redis":
        options += ["--set", "replay.storage=redis", "--set", "replay.redis_url=local"]
    proc = processes.train(run, *options)
    try:
        processes.wait_until((run / "checkpoints" / "latest.json").exists, proc, run)
        time.sleep(3)
        tree = processes.descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(2)
    finally:
        processes.kill_all(pid for pid in processes.descendants(proc.pid) if processes.alive(pid))
        processes.kill_all(pid for pid in tree if processes.alive(pid))
    held = _sizes_in_snapshot(run) if storage == "memory" else _sizes_in_redis(run)
    assert sum(held) > 0
    updates = json.loads((run / "checkpoints" / "latest.json").read_text())["updates"] + 50
    done = processes.resume(run, "--set", f"stop.updates={updates}")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["replay_at_start"] == held
    assert summary["updates"] >= updates


def test_killing_redis_ends_the_run_clearly_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    options = [
        "--set",
        "replay.storage=redis",
        "--set",
        "replay.redis_url=local",
        "--set",
        "stop.target_value=1000",
    ]
    proc = processes.train(run, *options)
    try:
        redis_pid = processes.wait_for_descendant(proc.pid, "redis-server", timeout=60)
        processes.wait_until(lambda: processes.metric_rows(run) >= 3, proc, run)
        os.kill(redis_pid, signal.SIGKILL)
        code = processes.finish(proc, timeout=120)
    finally:
        processes.finish(proc, timeout=1)
    log = processes.log_of(run)
    assert code == 2, log
    assert "Redis at redis://:***@127.0.0.1" in log and "Traceback" not in log
    summary = json.loads((run / "summary.json").read_text())
    assert "Redis" in summary["error"] and summary["updates"] > 0
    assert (run / "checkpoints" / "latest.json").exists()
    updates = summary["updates"] + 50
    done = processes.resume(run, "--set", f"stop.updates={updates}")  # a new private server, same AOF
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["updates"] >= updates and sum(resumed["replay_at_start"]) > 0


def _train_cli(tmp_path, *options):
    from typer.testing import CliRunner

    from textdqn.cli import app

    run = tmp_path / "run"
    args = ["train", processes.CARTPOLE, "--quiet", "--run-dir", str(run), "--set", "replay.storage=redis"]
    result = CliRunner().invoke(app, [*args, *options])
    return result, run


def test_unreachable_redis_is_one_clear_error_before_anything_starts(tmp_path):
    result, run = _train_cli(tmp_path, "--set", "replay.redis_url=redis://127.0.0.1:1/0")
    assert result.exit_code == 2
    assert "Redis at redis://127.0.0.1:1/0" in result.output and "start redis-server" in result.output
    assert not run.exists()  # nothing blocks running the same command again


def test_a_wrong_password_is_one_clear_error_that_hides_it(tmp_path, redis_server):
    url = redis_server.url.replace("redis://:", "redis://:wrong")
    result, run = _train_cli(tmp_path, "--set", f"replay.redis_url={url}")
    assert result.exit_code == 2 and "password" in result.output
    assert "wrong" not in result.output and "***" in result.output
    assert not run.exists()


def test_keys_of_another_run_under_our_prefix_are_refused(tmp_path, redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.set("textdqn:{run:0}:stray", b"written by something else")
    result, run = _train_cli(tmp_path, "--set", f"replay.redis_url={redis_server.url}")
    client.delete("textdqn:{run:0}:stray")
    client.close()
    assert result.exit_code == 2
    assert "textdqn:{run:0}:stray" in result.output and "--resume" in result.output
    assert not run.exists()


def test_a_shard_on_a_removed_node_comes_back_elsewhere_with_its_items(redis_server):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from textdqn.cluster.ray_runner import RayRunner
    from textdqn.config import load_config

    if ray.is_initialized():  # the session's local Ray would hide the cluster
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 8, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    config = load_config(
        processes.REPO / processes.CARTPOLE,
        [
            "actors.steps_per_call=256",
            "replay.capacity=20000",
            "replay.rate_limiter.min_size_to_sample=200",
            "replay.storage=redis",
            "replay.redis_url=local",
            "replay.num_shards=3",
        ],
    )
    runner = RayRunner(
        config,
        address=cluster.address,
        storage_options={"run_id": f"node-{uuid.uuid4().hex[:8]}", "redis_url": redis_server.url},
    )
    try:
        node_of = lambda h: ray.get(h.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))  # noqa: E731
        by_node = {node.node_id: node for node in workers}
        victim = next(i for i, h in enumerate(runner.shards) if node_of(h) in by_node)
        node = by_node[node_of(runner.shards[victim])]
        while (p := runner.step(1.0)).learner.total_updates < 20:
            pass
        ray.get(runner.shards[victim].flush.remote())
        held = ray.get(runner.shards[victim].info.remote())
        cluster.remove_node(node)
        deadline = time.time() + 120
        while True:
            p = runner.step(1.0)
            infos = ray.get([h.info.remote() for h in runner.shards]) if len(p.replay) == 3 else []
            if infos and infos[victim].restored_items > 0 and p.learner.total_updates > 40:
                break
            assert time.time() < deadline, "the shard did not come back on another node"
        assert node_of(runner.shards[victim]) != node.node_id
        assert infos[victim].restored_items >= held.size
    finally:
        runner.close()
        ray.shutdown()
        cluster.shutdown()
