"""`textdqn lm import` on a tiny Llama (tests/tiny_llama.py): a GGUF file written as llama.cpp
writes one comes back as the same model and tokenizer; a checkpoint directory is re-saved in the
chosen dtype and still loads as float32; and every bad source or destination is one clear error."""

import json

import pytest
import torch
from typer.testing import CliRunner

from tests.tiny_llama import CHATML, save_checkpoint, tiny_chat_tokenizer, tiny_llama, write_gguf
from textdqn.cli import app
from textdqn.envs.textgen.prompts import load_prompts
from textdqn.errors import LMImportError
from textdqn.lm import causal_lm
from textdqn.lm_import import PACKAGED, RECORD_FILE, PackagedModel, import_lm

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    tokenizer = tiny_chat_tokenizer()
    model = tiny_llama(len(tokenizer))
    return write_gguf(model, tokenizer, tmp_path_factory.mktemp("gguf") / "tiny.gguf"), model, tokenizer


def _logits(model, ids):
    with torch.no_grad():
        return model(torch.as_tensor([ids])).logits[0].float()


def test_gguf_import_gives_back_the_model_and_tokenizer(tmp_path, gguf_file):
    path, model, tokenizer = gguf_file
    done = import_lm(str(path), tmp_path / "lm", dtype="float32")
    assert (done.architecture, done.vocab_size, done.eos_token) == (
        "LlamaForCausalLM",
        len(tokenizer),
        "<|im_end|>",
    )
    assert done.chat_template and done.dtype == "float32"
    saved = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert "quantization_config" not in saved and saved["architectures"] == ["LlamaForCausalLM"]
    assert json.loads((tmp_path / "lm" / RECORD_FILE).read_text())["gguf"] is True

    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(tmp_path / "lm"), local_files_only=True)
    prompts = [r.prompt for r in load_prompts()[:40]]
    assert [loaded(p, add_special_tokens=False)["input_ids"] for p in prompts] == [
        tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts
    ]
    assert (loaded.eos_token, loaded.bos_token, loaded.chat_template) == (
        "<|im_end|>",
        "<|im_start|>",
        CHATML,
    )
    ids = tokenizer(prompts[0], add_special_tokens=False)["input_ids"]
    # float32 weights through GGUF (q/k rows permuted and back): the same logits
    torch.testing.assert_close(_logits(causal_lm(str(tmp_path / "lm")), ids), _logits(model, ids))


def test_a_checkpoint_directory_is_saved_in_bfloat16_and_loads_as_float32(tmp_path, checkpoint):
    done = import_lm(str(checkpoint), tmp_path / "lm")
    assert (
        done.dtype == "bfloat16"
        and json.loads((tmp_path / "lm" / "config.json").read_text())["dtype"] == "bfloat16"
    )
    lm = causal_lm(str(tmp_path / "lm"))
    assert {p.dtype for p in lm.parameters()} == {torch.float32}  # the learner trains float32 weights
    ids = [1, 5, 9, 30, 2]
    source = causal_lm(str(checkpoint))
    torch.testing.assert_close(_logits(lm, ids), _logits(source, ids), atol=0.02, rtol=0.02)


def test_the_cli_imports_and_refuses_a_non_empty_directory_without_force(tmp_path, checkpoint):
    target = tmp_path / "lm"
    first = runner.invoke(app, ["lm", "import", str(checkpoint), str(target), "--dtype", "float32"])
    assert first.exit_code == 0, first.output
    assert "LlamaForCausalLM" in first.output and "chat template yes" in first.output
    again = runner.invoke(app, ["lm", "import", str(checkpoint), str(target)])
    assert again.exit_code == 2 and "not empty" in again.output and "--force" in again.output
    (target / "stale.bin").write_bytes(b"old")
    forced = runner.invoke(app, ["lm", "import", str(checkpoint), str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert not (target / "stale.bin").exists() and (target / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_bad_sources_and_destinations_are_clear_errors(tmp_path, checkpoint, monkeypatch):
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setitem(
        PACKAGED, "nosuch", PackagedModel("textdqn-no-such-package", "x/y.gguf", "pip install x")
    )
    cases = [
        (str(tmp_path / "missing.gguf"), tmp_path / "out", "does not exist"),
        (str(text), tmp_path / "out", "not a GGUF file"),
        (str(tmp_path / "empty-dir"), tmp_path / "out", "without config.json"),
        ("nosuch", tmp_path / "out", "pip install x"),
        (str(checkpoint), a_file, "is a file"),
        (str(checkpoint), checkpoint.parent, "holds SOURCE"),
    ]
    for source, target, message in cases:
        with pytest.raises(LMImportError, match=message):
            import_lm(source, target)
    with pytest.raises(LMImportError, match="no checkpoint"):
        import_lm(str(checkpoint), tmp_path / "home", force=True)
    assert (tmp_path / "home" / "notes.txt").read_text() == "mine"
    with pytest.raises(LMImportError, match="bfloat16"):
        import_lm(str(checkpoint), tmp_path / "out", dtype="int8")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setattr("transformers.utils.is_gguf_available", lambda *args: False)
    with pytest.raises(LMImportError, match=r"needs gguf .*textdqn\[gguf\]"):
        import_lm(str(fake), tmp_path / "out")
    assert not (tmp_path / "out").exists()
