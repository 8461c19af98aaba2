"""bench encoder: every setting's row runs the real Learner.update, the table shows them all."""

import pytest
import torch
from rich.console import Console

from textdqn.bench.encoder_bench import EncoderBenchSettings, run_encoder_bench
from textdqn.bench.tables import encoder_table
from textdqn.errors import ConfigError


def test_rows_cover_every_setting_and_leave_the_threads_as_they_were():
    before = torch.get_num_threads()
    settings = EncoderBenchSettings(
        ff=(64, 32), threads=(1, 2), tokens=(16,), extras=("bf16",), batch=8, seconds=0.2, warmup_updates=1
    )
    result = run_encoder_bench(settings, log=lambda m: None)
    rows = result["rows"]
    assert [(r["ff"], r["threads"], r["extra"]) for r in rows] == [
        (64, 1, "-"),
        (64, 2, "-"),
        (32, 1, "-"),
        (32, 2, "-"),
        (32, 2, "bf16"),
    ]
    assert all(r["updates_per_s"] > 0 and r["transitions_per_s"] == r["updates_per_s"] * 8 for r in rows)
    assert rows[0]["vs_first"] == 1.0
    assert torch.get_num_threads() == before
    console = Console(width=200, record=True)
    console.print(encoder_table(result))
    text = console.export_text()
    assert "bf16" in text and "vs first" in text


def test_unknown_extras_are_refused():
    with pytest.raises(ConfigError, match="bf16, compile"):
        EncoderBenchSettings(extras=("fp8",))


def test_the_token_benches_measure_the_configs_network_not_a_copy_of_it(tmp_path):
    from textdqn.bench.encoder_bench import token_network
    from textdqn.bench.learner_bench import learner_settings
    from textdqn.config import load_config

    shipped = load_config("configs/dialogue-text.yaml")
    network, batch, tokens = token_network()
    assert network.kind == "encoder" and network.encoder_ff == shipped.network.encoder_ff
    assert (batch, tokens) == (shipped.learner.batch_size, shipped.env.kwargs["max_tokens"])
    settings = learner_settings("transformer")
    assert (settings.encoder, settings.batch, settings.tokens) == (network, batch, tokens)
    narrow = tmp_path / "narrow.yaml"
    text = open("configs/dialogue-text.yaml").read().replace("encoder_width: 64", "encoder_width: 32")
    narrow.write_text(text)
    assert token_network(str(narrow))[0].encoder_width == 32
    with pytest.raises(ConfigError, match="observation = tokens"):
        token_network("configs/dialogue.yaml")
