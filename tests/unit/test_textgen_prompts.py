"""TextGen-v0 data: the shipped prompt file (equal to its generator's output), prompt-file
errors, and the word-level tokenizer's ids."""

import json

import pytest

from textdqn.envs.textgen import make_prompts
from textdqn.envs.textgen.prompts import LARGE_PROMPTS, SHIPPED_PROMPTS, load_prompts, split_records
from textdqn.envs.textgen.tokens import (
    SPECIAL_TOKENS,
    build_tokenizer,
    concept_ids,
    encode_prompts,
)
from textdqn.envs.textgen.words import concept_words, vocabulary_words, word_forms
from textdqn.errors import ConfigError


def test_the_shipped_files_are_what_the_generator_writes(tmp_path):
    assert SHIPPED_PROMPTS.read_text(encoding="utf-8") == make_prompts.to_jsonl(make_prompts.make_records())
    make_prompts.main([str(tmp_path / "p.jsonl"), str(tmp_path / "large.jsonl")])
    assert (tmp_path / "p.jsonl").read_bytes() == SHIPPED_PROMPTS.read_bytes()
    assert (tmp_path / "large.jsonl").read_bytes() == LARGE_PROMPTS.read_bytes()


def test_the_large_file_has_the_same_test_prompts_and_six_times_the_training_ones():
    shipped, large = load_prompts(), load_prompts("textdqn:envs/textgen/data/concepts-large.jsonl")
    assert len(large) == 3000 and large[:600] == shipped
    assert split_records(large, "test") == split_records(shipped, "test")
    train = split_records(large, "train")
    assert len(train) == 2880
    assert not {r.concepts for r in train} & {r.concepts for r in split_records(shipped, "test")}


def test_shipped_records_are_commongen_style_concept_sets():
    records = load_prompts()
    nouns, verbs = concept_words()
    assert len(records) == 600 and 140 <= len(nouns) + len(verbs) <= 170
    test = split_records(records, "test")
    assert len(test) == 120 and len(split_records(records, "train")) == 480
    assert len({r.concepts for r in records}) == len(records)  # no concept set twice
    for r in records:
        assert 2 <= len(r.concepts) <= 4 and list(r.concepts) == sorted(r.concepts)
        assert set(r.concepts) <= set(nouns) | set(verbs)
        assert any(c in verbs for c in r.concepts) and any(c in nouns for c in r.concepts)
        assert r.prompt.endswith(", ".join(r.concepts) + ".")


def _write(tmp_path, *records):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


GOOD = {"id": "a", "concepts": ["dog"], "split": "train", "prompt": "say dog"}


def test_user_prompt_files_are_read_and_their_errors_name_the_field(tmp_path):
    path = _write(tmp_path, GOOD, {**GOOD, "id": "b", "split": "test", "target": "a dog"})
    records = load_prompts(str(path))
    assert [r.id for r in records] == ["a", "b"] and records[1].target == "a dog"
    cases = {
        "'split'": {**GOOD, "split": "dev"},
        "'concepts'": {**GOOD, "concepts": "dog"},
        "'prompt'": {k: v for k, v in GOOD.items() if k != "prompt"},
        "'id'": {**GOOD, "id": 3},
        "'target'": {**GOOD, "target": 1},
    }
    for field, bad in cases.items():
        with pytest.raises(ConfigError, match=f":2: field {field} must be") as error:
            load_prompts(str(_write(tmp_path, GOOD, bad)))
        assert "e.g." in str(error.value)  # shows a valid record
    with pytest.raises(ConfigError, match=":2: not valid JSON"):
        load_prompts(str(_write(tmp_path, GOOD, "{oops")))
    with pytest.raises(ConfigError, match="used twice"):
        load_prompts(str(_write(tmp_path, GOOD, GOOD)))
    with pytest.raises(ConfigError, match="is not a file"):
        load_prompts(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="no record with split 'test'"):
        split_records(load_prompts(str(_write(tmp_path, GOOD))), "test")


def test_tokenizer_ids_are_deterministic_special_tokens_first_then_sorted_words():
    records = load_prompts()
    first, second = build_tokenizer(records), build_tokenizer(list(reversed(records)))
    vocab = first.get_vocab()
    assert vocab == second.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2]
    assert (first.pad_token_id, first.eos_token_id) == (0, 2)
    words = sorted(vocab, key=vocab.get)[len(SPECIAL_TOKENS) :]
    assert words == sorted(words) and set(vocabulary_words()) <= set(words)
    assert set(encode_prompts(first, [records[0].prompt])[0]).isdisjoint({first.unk_token_id})


def test_every_concept_form_is_one_token_and_concept_ids_find_them():
    tokenizer = build_tokenizer(load_prompts())
    assert tokenizer.decode(concept_ids(tokenizer, [["dog", "run"]])[0]).split() == ["dog", "run"]
    # Not in the vocabulary: it would read as [UNK] and the target could never be reached.
    with pytest.raises(ConfigError, match="concept 'zebra' of prompt 1 is not in the reference LM"):
        concept_ids(tokenizer, [["zebra"]])
    for word in concept_words()[0] + concept_words()[1]:
        for form in word_forms(word):
            assert len(tokenizer(form, add_special_tokens=False)["input_ids"]) == 1


def _bpe_tokenizer_with_bos():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>"], show_progress=False)
    bpe.train_from_iterator([r.prompt for r in load_prompts()], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")


@pytest.mark.parametrize("kind", ["word-level", "bpe with bos"])
def test_batched_encodings_equal_the_tokenizers_own_calls(kind):
    records = load_prompts()[:60]
    tokenizer = build_tokenizer(load_prompts()) if kind == "word-level" else _bpe_tokenizer_with_bos()
    prefix = [tokenizer.bos_token_id] if kind == "bpe with bos" else []
    for record, ids in zip(records, encode_prompts(tokenizer, [r.prompt for r in records]), strict=True):
        assert ids.tolist() == prefix + tokenizer(record.prompt, add_special_tokens=False)["input_ids"]
    for record, ids in zip(records, concept_ids(tokenizer, [r.concepts for r in records]), strict=True):
        own = {
            i
            for c in record.concepts
            for t in (c, " " + c)
            for i in tokenizer(t, add_special_tokens=False)["input_ids"]
        }
        assert ids.tolist() == sorted(own - {tokenizer.unk_token_id})
    assert encode_prompts(tokenizer, []) == [] and concept_ids(tokenizer, [[]])[0].size == 0
