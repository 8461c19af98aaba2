"""Benchmark tables render every figure they are given, and '-' for what a peer lacks."""

from rich.console import Console

from textdqn.bench.tables import learner_table, train_table


def _render(table) -> str:
    console = Console(width=160, record=True)
    console.print(table)
    return console.export_text()


def test_train_table_shows_both_runs_and_the_verdict():
    result = {
        "rows": [
            {
                "impl": "textdqn",
                "reached_target": True,
                "total_s": 62.6,
                "setup_s": 8.0,
                "env_steps": 157696,
                "final_eval_return": 500.0,
                "budget_s": 900,
                "learner_utilization": 0.934,
                "policy_lag_mean": 0.31,
            },
            {
                "impl": "RLlib",
                "reached_target": False,
                "total_s": 621.5,
                "setup_s": 7.8,
                "env_steps": 25000,
                "final_eval_return": None,
                "budget_s": 600,
                "learner_utilization": None,
                "policy_lag_mean": None,
            },
        ],
        "verdict": "at least 9.9x sooner",
    }
    text = _render(train_table(result))
    assert "157,696" in text and "93%" in text and "0.31" in text
    assert "no (budget 600s)" in text and "at least 9.9x sooner" in text


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

    result = run_lm_bench(LMBenchSettings(batch=8, seconds=0.2, warmup_updates=1), "cpu", log=lambda m: None)
    (row,) = result["rows"]  # no bf16 row without CUDA
    assert row["precision"] == "fp32" and row["vocab"] == 500 and row["updates_per_s"] > 0
    assert row["tokens_per_s"] > row["transitions_per_s"]  # every row holds >= 20 tokens
    assert lm_table(result).row_count == 1
