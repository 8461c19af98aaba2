"""TextGen-v0 with an instruct model's chat template (env.kwargs.chat_template), on the tiny
ChatML Llama of tests/tiny_llama.py: prompts become a user turn and the opening of the
assistant's, the stop action is the end-of-turn token (found in the template, not assumed to
be EOS), and every concept of the shipped prompts can be written."""

import pytest

from tests.tiny_llama import SPECIAL, save_checkpoint, tiny_chat_tokenizer
from textdqn.envs.textgen import tokens
from textdqn.envs.textgen.env import TextGenEnv
from textdqn.envs.textgen.prompts import load_prompts
from textdqn.errors import ConfigError

END_OF_TURN = SPECIAL.index("<|im_end|>")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return str(save_checkpoint(tmp_path_factory.mktemp("tiny-chat-llama")))


def test_chat_prompts_are_a_user_turn_then_the_assistants_opening():
    tokenizer = tiny_chat_tokenizer()
    (ids,) = tokens.encode_prompts(tokenizer, ["write a sentence with: dog, ball."], chat_template=True)
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\n") and ids[0] == SPECIAL.index("<|im_start|>")
    assert text.endswith(
        "<|im_start|>user\nwrite a sentence with: dog, ball.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert list(ids).count(END_OF_TURN) == 2  # each special token is one id, not spelled out
    (plain,) = tokens.encode_prompts(tokenizer, ["write a sentence with: dog, ball."])
    assert tokenizer.decode(plain) == "<|im_start|>write a sentence with: dog, ball."  # BOS + the text


def test_the_stop_action_is_the_templates_end_of_turn_even_when_eos_differs():
    tokenizer = tiny_chat_tokenizer()
    assert tokens.stop_token_id(tokenizer, chat_template=True) == END_OF_TURN
    tokenizer.eos_token = "<|endoftext|>"  # a base-model EOS: the chat turn still ends at <|im_end|>
    assert tokens.stop_token_id(tokenizer) == 0
    assert tokens.stop_token_id(tokenizer, chat_template=True) == END_OF_TURN
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        tokens.stop_token_id(tokenizer, chat_template=True)
    with pytest.raises(ConfigError, match="chat_template: false"):
        tokens.encode_prompts(tokenizer, ["hi"], chat_template=True)


def test_every_shipped_concept_can_be_written_with_a_byte_level_vocabulary():
    tokenizer = tiny_chat_tokenizer()
    records = load_prompts()
    allowed = tokens.concept_ids(tokenizer, [r.concepts for r in records])
    backend = tokenizer.backend_tokenizer
    for record, ids in zip(records, allowed, strict=True):
        for concept in record.concepts:
            pieces = backend.encode(" " + concept, add_special_tokens=False).ids
            assert set(pieces) <= set(ids), concept  # every piece of a multi-token concept stays allowed


def test_the_env_wraps_prompts_in_the_template_and_stops_at_end_of_turn(checkpoint):
    env = TextGenEnv(lm={"path": checkpoint}, chat_template=True, top_k=4, max_new_tokens=6, max_tokens=64)
    obs, info = env.reset(seed=0, options={"prompt_index": 0})
    shown = env.tokenizer.decode(obs[1 : 1 + obs[0]])
    assert shown.endswith(f"{env.records[0].prompt}<|im_end|>\n<|im_start|>assistant\n")
    assert env.eos_id == END_OF_TURN and info["action_mask"][END_OF_TURN]
    assert env.banned[[0, 1]].all() and not env.banned[END_OF_TURN]  # <|endoftext|>, <|im_start|>
    concept = int(tokens.concept_ids(env.tokenizer, [env.records[0].concepts])[0][0])
    _, _, terminated, _, info = env.step(concept)
    assert not terminated and not info["action_mask"][[0, 1]].any()
    _, _, terminated, _, info = env.step(END_OF_TURN)
    assert terminated and info["eos"] == 1.0 and info["length"] == 2.0
    assert env.generated_text([concept, END_OF_TURN]) == env.tokenizer.decode([concept]).strip()
    with pytest.raises(ConfigError, match="no chat template"):
        TextGenEnv(chat_template=True)  # the shipped word-level LM has no template
