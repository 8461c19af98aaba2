"""Token-level text generation: prompts as data (a JSONL file), a word-level tokenizer or a
local checkpoint's own, a reference causal LM, reward plug-ins, and the `textdqn/TextGen-v0`
environment built from them.
"""
