"""The replay benchmark end to end at toy size: every implementation measured, JSON shape right."""

import json

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
    assert set(result["ratios"]) == {"ours_vs_rllib_sample_update", "ours_vs_cpprb_sample_update"}
    assert all(v > 0 for v in result["ratios"].values())
    # uint16 token ids: 2 x 128 x 2 bytes of observations per transition, plus the rest.
    assert result["bytes_per_item"]["128-token"] > 512
    write_json(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == result["rows"]
