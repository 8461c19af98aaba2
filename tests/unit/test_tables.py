"""Benchmark tables render every figure they are given, and '-' for what a peer lacks."""

from rich.console import Console

from textdqn.bench.tables import learner_table, train_table


def _render(table) -> str:
    console = Console(width=160, record=True)
    console.print(table)
    return console.export_text()


def test_train_table_shows_each_seed_the_medians_and_the_ratios():
    from textdqn.bench.train_bench import TrainBenchRow, summarize, verdicts

    rows = [
        TrainBenchRow("textdqn (serial)", 0, True, 20.0, 15.0, 150_000, {"return_mean": 500.0}, 900),
        TrainBenchRow("textdqn (serial)", 1, True, 30.0, 25.0, 210_000, {"return_mean": 480.0}, 900),
        TrainBenchRow("textdqn (serial)", 2, False, 90.0, 85.0, 500_000, {"return_mean": 120.0}, 900),
        TrainBenchRow("single-process DQN", 0, True, 40.0, 38.0, 220_000, {"return_mean": 490.0}, 900),
        TrainBenchRow("RLlib DQN", 0, False, 610.0, 600.0, 60_000, {"return_mean": 200.0}, 600),
    ]
    summary = summarize(rows)
    assert [s["median_total_s"] for s in summary] == [30.0, 40.0, 610.0]
    assert [s["reached"] for s in summary] == [2, 1, 0]
    # A missed run above the median does not make the median a bound; RLlib's only run does.
    assert [s["lower_bound"] for s in summary] == [False, False, True]
    lines = verdicts(summary)
    assert lines == [
        "textdqn (serial) median 30.0 s vs single-process DQN 40.0 s: 1.33x",
        "textdqn (serial) median 30.0 s vs RLlib DQN ≥ 610.0 s: at least 20.33x",
    ]
    result = {
        "target": {"metric": "return_mean", "value": 475.0, "max": {}, "min": {}, "env": "CartPole-v1"},
        "rows": [r.__dict__ for r in rows],
        "summary": summary,
        "verdicts": lines,
    }
    text = _render(train_table(result))
    assert "2/3" in text and "2: 90.0 missed (500,000)" in text and "≥ 610.0" in text
    assert "return_mean >= 475.0" in text and "1.33x" in text


def test_a_mode_that_mostly_missed_gets_no_ratio():
    from textdqn.bench.train_bench import TrainBenchRow, summarize, verdicts

    rows = [
        TrainBenchRow("textdqn (local mode)", 0, False, 900.0, 890.0, 1, {}, 900),
        TrainBenchRow("textdqn (local mode)", 1, True, 50.0, 40.0, 1, {"return_mean": 500.0}, 900),
        TrainBenchRow("dqn", 0, True, 30.0, 28.0, 1, {"return_mean": 500.0}, 900),
    ]
    assert verdicts(summarize(rows)) == ["textdqn (local mode) reached the target in 1 of 2 runs: no ratio"]


def test_learner_table_shows_the_ratio():
    result = {
        "rows": [
            {
                "feed": "in-process",
                "device": "cpu",
                "updates_per_s": 76.8,
                "transitions_per_s": 39321.6,
                "utilization": 0.92,
            }
        ],
        "ratio_ray_vs_in_process": 1.05,
    }
    text = _render(learner_table(result))
    assert "76.8" in text and "39,322" in text and "92%" in text and "1.05x" in text


def test_text_transition_memory_is_measured_on_a_shard_and_id_masks_fit_the_target():
    from textdqn.bench.replay_bench import transition_memory
    from textdqn.bench.tables import memory_table

    rows = {r["transition"]: r for r in transition_memory(batch=8)}
    gpt2 = rows["textgen GPT-2 (1+48, 50,257 tokens)"]
    # 2 × 49 uint16 tokens + action, reward, discount, version + key and tree leaf + the mask
    assert gpt2["bytes_packed_mask"] == 2 * 49 * 2 + 8 + 4 + 4 + 4 + 8 + 16 + -(-50_257 // 8)
    assert gpt2["bytes_bool_mask"] - gpt2["bytes_packed_mask"] == 50_257 - 6_283
    # SmolLM2's 49,152 tokens, top-64 + 12 concept tokens + EOS: 77 uint16 ids a mask, and the
    # whole transition (2 × 97 uint16 tokens, scalars, key and tree share) within 1 KB
    smol = rows["textgen SmolLM2 (1+96, 49,152 tokens, top-64)"]
    assert smol["bytes_id_mask"] == 2 * 97 * 2 + 8 + 4 + 4 + 4 + 8 + 16 + 77 * 2 <= 1024
    assert smol["bytes_packed_mask"] - smol["bytes_id_mask"] == 6_144 - 154 and smol["stored_as"] == "ids"
    assert rows["dialogue tokens (128, 25 acts)"]["stored_as"] == "packed"
    text = _render(memory_table({"text_transitions": list(rows.values())}))
    assert "586 (77)" in text and "<= 1,024 bytes" in text


def test_lm_learner_bench_measures_the_lm_q_network_on_cpu():
    from textdqn.bench.lm_bench import LMBenchSettings, run_lm_bench
    from textdqn.bench.tables import lm_table

    settings = LMBenchSettings(batch=8, seconds=0.2, warmup_updates=1, train_layers=(0, 1))
    result = run_lm_bench(settings, "cpu", log=lambda m: None)
    row, top = result["rows"]  # no bf16 rows without CUDA
    assert row["precision"] == "fp32" and row["vocab"] == 500 and row["updates_per_s"] > 0
    assert row["tokens_per_s"] > row["transitions_per_s"]  # every row holds >= 20 tokens
    assert row["published_bytes"] >= 4 * row["parameters"]  # the whole LM trains: all of it is sent
    assert top["trained"] < row["trained"] and top["published_bytes"] < 0.6 * row["published_bytes"]
    assert lm_table(result).row_count == 2


def test_each_implementation_runs_as_its_own_command(tmp_path):
    from textdqn.bench.train_bench import _command

    sets = ("stop.time_s=60",)

    def command(impl):
        return _command(impl, "configs/cartpole.yaml", 2, tmp_path, sets, 300.0)[3:]

    assert command("serial") == [
        "train", "configs/cartpole.yaml", "--run-dir", str(tmp_path / "run"),
        "--set", "run.seed=2", "--set", "stop.time_s=60", "--serial",
    ]  # fmt: skip
    assert command("local")[-1] == "stop.time_s=60"  # no --serial: local mode
    assert command("dqn") == [
        "bench", "dqn-baseline", "configs/cartpole.yaml", "--seed", "2",
        "--json", str(tmp_path / "result.json"), "--set", "stop.time_s=60",
    ]  # fmt: skip
    assert command("rllib")[:4] == ["bench", "rllib-dqn", "--budget", "300.0"]
