"""Cluster mode on a simulated two-node Ray cluster (ray.cluster_utils.Cluster): the runner
joins it by address, shards spread over the nodes, and training makes progress."""

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from textdqn.cluster.ray_runner import RayRunner  # noqa: E402
from textdqn.config import load_config  # noqa: E402

pytestmark = pytest.mark.integration


def _assert_training_progresses(runner, updates: int = 20, slices: int = 30) -> None:
    """Step the runner until the learner passes `updates` with transitions in the replay."""
    done = 0
    for _ in range(slices):
        progress = runner.step(1.0)
        done = max(done, progress.learner.total_updates)
        if done > updates:
            break
    assert done > updates and sum(i.inserts for i in progress.replay) > 0


@pytest.fixture
def two_nodes():
    if ray.is_initialized():  # the session's local Ray would hide the cluster
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4, "include_dashboard": False})
    cluster.add_node(num_cpus=4)
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_runner_joins_a_cluster_and_spreads_shards(two_nodes):
    config = load_config(
        "configs/cartpole.yaml",
        ["actors.steps_per_call=256", "replay.capacity=20000", "replay.rate_limiter.min_size_to_sample=200"],
    )
    runner = RayRunner(config, address=two_nodes.address)
    try:
        _assert_training_progresses(runner)
        node_of = lambda shard: shard.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())  # noqa: E731
        shard_nodes = set(ray.get([node_of(s) for s in runner.shards]))
        assert len(shard_nodes) == 2  # SPREAD: one shard on each node
    finally:
        runner.close()


@pytest.fixture
def three_nodes():
    """A head, a learner node (custom resource `learner`) and a plain CPU node."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "include_dashboard": False})
    learner_node = cluster.add_node(num_cpus=2, resources={"learner": 1})
    cluster.add_node(num_cpus=3)
    cluster.wait_for_nodes()
    yield cluster, learner_node
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_the_learner_lands_on_the_learner_node_and_shards_and_actors_spread(three_nodes):
    cluster, learner_node = three_nodes
    config = load_config(
        "configs/cartpole.yaml",
        [
            "actors.num_actors=3",
            "actors.steps_per_call=256",
            "replay.capacity=20000",
            "replay.rate_limiter.min_size_to_sample=200",
        ],
    )
    runner = RayRunner(config, address=cluster.address)
    try:
        _assert_training_progresses(runner)
        placed = runner.placement
        assert placed["learner"]["node"] == learner_node.node_id
        assert len({s["node"] for s in placed["shards"]}) == 2  # on distinct nodes
        actor_nodes = {a["node"] for a in placed["actors"]}
        assert learner_node.node_id not in actor_nodes and len(actor_nodes) == 2  # the other two nodes
        assert all(p["address"] for p in [placed["learner"], *placed["shards"], *placed["actors"]])
    finally:
        runner.close()


def test_bench_scaling_runs_unchanged_on_a_cluster(three_nodes, tmp_path):
    from typer.testing import CliRunner

    from textdqn.bench.scaling_bench import read_csv
    from textdqn.cli import app

    cluster, _ = three_nodes
    args = ["bench", "scaling", "configs/cartpole.yaml", "--actors", "2", "--shards", "2", "--seconds", "3"]
    args += ["--warmup", "1", "--address", cluster.address, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--set", "replay.rate_limiter.min_size_to_sample=200"])
    assert result.exit_code == 0, result.output
    (row,) = read_csv(tmp_path / "scaling.csv")
    assert row["nodes"] == 3 and row["env_steps_per_s"] > 0 and row["updates_per_s"] > 0
    assert row["cpu_actors"] > 0 and row["cpu_ray_system"] is None  # only measured for local Ray
