"""configs/textgen-pretrained.yaml end to end (serial, a few updates) on a stand-in for a
pretrained checkpoint: a tiny GPT-2 with a byte-level BPE tokenizer (GPT-2's kind, spaces
inside tokens), written by save_pretrained to a local directory as users would."""

import pytest
from typer.testing import CliRunner

from textdqn.cli import app
from textdqn.cluster.supervisor import train
from textdqn.config import load_config
from textdqn.envs.textgen.prompts import load_prompts
from textdqn.lm import causal_lm

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bpe_checkpoint(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"], show_progress=False)
    texts = [r.prompt + " " + " ".join(r.concepts) for r in load_prompts()]
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")
    path = tmp_path_factory.mktemp("bpe-lm")
    model = causal_lm(vocab_size=len(fast), max_positions=64, layers=1, width=32, heads=2, seed=0)
    model.save_pretrained(str(path))
    fast.save_pretrained(str(path))
    return path


def test_pretrained_config_trains_and_shows_on_a_local_bpe_checkpoint(tmp_path, bpe_checkpoint):
    config = load_config(
        "configs/textgen-pretrained.yaml",
        [
            f"env.kwargs.lm.path={bpe_checkpoint}",
            "env.num_envs=2",
            "actors.steps_per_call=64",
            "learner.batch_size=8",
            "learner.device=cpu",
            "replay.rate_limiter.min_size_to_sample=64",
            "eval.every_env_steps=0",
            "eval.episodes=4",
            "eval.num_envs=2",
            "stop.updates=10",
            "stop.time_s=120",
        ],
    )
    assert config.network.lm == config.env.kwargs["lm"]  # the anchor: --set moved both
    run_dir = tmp_path / "run"
    summary = train(config, mode="serial", run_dir=str(run_dir), live=False)
    assert summary["updates"] >= 10
    assert {"coverage_mean", "success_rate"} <= set(summary["final_eval"]) & set(summary["baseline"])
    assert (run_dir / "tokenizer" / "tokenizer.json").is_file()
    shown = CliRunner().invoke(app, ["eval", str(run_dir), "--show", "2"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("reference:") == 2 and shown.output.count("agent:") == 2
