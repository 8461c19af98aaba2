"""The replay benchmark end to end at toy size: every implementation measured, JSON shape right."""

import json
import shutil

import pytest

from textdqn.bench.replay_bench import ReplayBenchSettings, run_replay_bench, write_json

pytestmark = pytest.mark.integration


def test_bench_measures_every_implementation(tmp_path, ray_local):
    settings = ReplayBenchSettings(capacity=4096, prefill=2048, seconds=0.05, ray_shards=(1, 2))
    result = run_replay_bench(settings, log=lambda m: None)
    impls = {r["impl"] for r in result["rows"]}
    assert {"textdqn shard", "rllib", "cpprb", "textdqn ray x1", "textdqn ray x2"} <= impls
    assert {r["op"] for r in result["rows"]} == {"insert", "sample", "sample+update"}
    assert all(r["per_s"] > 0 for r in result["rows"])
    ratios = {"ours_vs_rllib_sample_update", "ours_vs_cpprb_sample_update"}
    if shutil.which("redis-server"):  # the Redis-backed shard, measured in the same run
        assert "textdqn shard+redis" in impls
        ops, kinds = ("insert", "sample_update"), ("8-float", "128-token")
        ratios |= {f"redis_vs_memory_{op}_{obs}" for op in ops for obs in kinds}
        recovery = result["redis_recovery"]
        assert recovery["items"] == 4096 and recovery["seconds"] > 0
    assert set(result["ratios"]) == ratios
    assert all(v > 0 for v in result["ratios"].values())
    # uint16 token ids: 2 x 128 x 2 bytes of observations per transition, plus the rest.
    assert result["bytes_per_item"]["128-token"] > 512
    write_json(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == result["rows"]
