"""`textdqn/TextGen-v0`: token-level text generation as an MDP (after Guo et al. 2022, ILQL).

Each episode shows the agent one prompt record (CommonGen-style: "write a sentence with: dog,
ball, park."); each step the agent appends one token. The action mask allows the top-k next
tokens of a reference causal LM at the current prefix, the end-of-sequence token, and the
tokens the task needs (the prompt's concepts); never padding or other special tokens. The
episode terminates at EOS or after `max_new_tokens` tokens, and a reward plug-in (rewards.py)
scores the generated text: at the end, or spread over the tokens (`per_token`). Fluency terms
apply to every plug-in: a per-token KL penalty `kl_coef · log p_ref(a_t | s_t)` towards the
reference, a bonus per token (length normalisation), a repetition penalty on the text, and a
penalty for a text cut at the length limit without ending.

Observation: token ids, length-prefixed, shape [1 + max_tokens]: obs[0] = L, the number of
real tokens; obs[1 : 1 + L] = the prompt's tokens, then the generated ones; the rest 0.
uint16 when the vocabulary and max_tokens fit, else int32.

info: "action_mask" (bool [V]) at every step; at the episode's end also "coverage" (fraction of
the concepts used), "success" (the plug-in's: every concept used, for coverage), "length"
(tokens generated, EOS included), "reward" (the episode's total), "kl" (−Σ log p_ref of the
generated tokens: the sequence's KL estimate to the reference for a greedy policy), "eos"
(1 when the text ended with EOS before the limit), "score" (the plug-in's score of the text
without the fluency terms: coverage, a classifier's probability, a similarity), the fluency
judge's "judge_nll", "judge_tokens" and "perplexity" of the text after its prompt, and its
repetition metrics (fluency.text_metrics: distinct_1, distinct_2, repeated_3grams, words),
and the "text" itself (an evaluation's corpus_distinct_2 reads it).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from textdqn.envs.textgen import fluency, tokens
from textdqn.envs.textgen.agents import BaselineAgents, Generation
from textdqn.envs.textgen.beam_plans import load_plans
from textdqn.envs.textgen.prompts import PromptRecord, load_prompts, split_records
from textdqn.envs.textgen.reference import LMState, ReferenceLM
from textdqn.envs.textgen.rewards import coverage, covered, kl_penalty, make_reward, repetition, words
from textdqn.envs.textgen.vector import TextGenVectorEnv
from textdqn.envs.word_tokenizer import save_tokenizer
from textdqn.errors import ConfigError
from textdqn.lm import LM_DTYPES, LM_KEYS, SHIPPED_LM, resolve_path, shared_causal_lm


class TextGenEnv(BaselineAgents, gym.Env):
    """Text generation one token at a time, rewarded by a plug-in, guided by a reference LM.

    Args:
        prompts: a JSONL file of prompt records (see prompts.py); "" = the shipped concepts.jsonl.
        split: "train" or "test" records.
        lm: the reference LM: {"path": local checkpoint} (its own tokenizer is used), or
            {"layers", "width", "heads", "seed"} for a GPT-2 built from a config (seeded weights, the
            word-level tokenizer of the prompts); passed to textdqn.lm.causal_lm. None or {}: the
            small LM shipped for the concept prompts (textdqn.lm.SHIPPED_LM).
        judge: the fluency judge, a local causal LM {"path": dir} scoring the text's perplexity
            after its prompt (with its own tokenizer); None: the reference LM.
        top_k: how many of the reference's most likely next tokens the mask allows.
        max_new_tokens: the most tokens one episode generates (EOS included).
        max_tokens: observation length, prompt plus generated tokens (every prompt must leave
            room for max_new_tokens).
        reward: the reward plug-in: "coverage", "classifier" or "similarity".
        reward_kwargs: the plug-in's arguments (see its class).
        kl_coef: weight of the per-token KL penalty (≥ 0; 0 turns it off).
        repeat_penalty: subtracted from the plug-in's score, times the text's repetition (the
            fraction of words repeating the one before or an earlier bigram; ≥ 0).
        unfinished_penalty: paid once by a text that reaches max_new_tokens without EOS (≥ 0).
        token_bonus: earned by every generated token, EOS included (≥ 0). With kl_coef, a text's
            fluency terms sum to kl_coef · (log p_ref(text) + (token_bonus / kl_coef) · length):
            a beam search's length normalisation, so that the likeliest text per token, not the
            shortest, is the best one (the judge's perplexity is per token).
        eos_after_concepts: the mask allows EOS only once the text uses every concept of the
            record (constrained decoding, as CommonGen's lexically constrained beam searches):
            the agent cannot stop before the task is done, only choose how to write it.
        per_token: pay the plug-in's reward as per-token increments rather than at the end.
        chat_template: show each prompt as a user turn of the LM tokenizer's chat template (an
            instruct model's), the agent writing the assistant's turn; the stop action is then the
            end-of-turn token (tokens.stop_token_id).
        mark_used_concepts: in the observation (not what the reference LM or the judge read), each
            prompt token that spells a concept the text already uses becomes the tokenizer's
            unknown token: "write a sentence with: [UNK], piano, wait." once "box" is written
            (with a subword tokenizer, every prompt token among the concept's subword tokens).
            The Q-network then reads which concepts are left (and that none is, where EOS
            becomes allowed) instead of having to work it out from the prompt and the text.
            Observations then stop being prefixes of the next ones: not with network.kv_cache.
        lm_dtype: "float32", or "bfloat16": the reference LM (and so the default judge) computes
            in bfloat16, about 1.8x faster for SmolLM2 on a CPU with bfloat16 matrix units
            (README); log-probabilities at bfloat16's precision.
        beam_plans: a file of the constrained beam search's texts per prompt (beam_plans.py; written
            by `textdqn lm beam-plans`), which the `beam` agent reads instead of searching them
            again; "" = search as it goes. A file searched under other settings is an error.
    """

    metadata: ClassVar[dict] = {"render_modes": []}
    run_files: ClassVar[tuple[str, ...]] = ("prompts",)
    """keyword arguments naming files a run directory keeps a copy of (envs/run_files.py)"""
    vector_env_class: ClassVar[type] = TextGenVectorEnv
    """what textdqn's make_vector_env steps these envs with: one batched reference read a step"""
    evaluation_metrics = staticmethod(fluency.evaluation_metrics)
    """what an evaluation derives from the means of the episode infos (corpus perplexity)"""

    def __init__(
        self,
        prompts: str = "",
        split: str = "train",
        lm: dict[str, Any] | None = None,
        top_k: int = 8,
        max_new_tokens: int = 12,
        max_tokens: int = 40,
        reward: str = "coverage",
        reward_kwargs: dict[str, Any] | None = None,
        kl_coef: float = 0.0,
        repeat_penalty: float = 0.0,
        unfinished_penalty: float = 0.0,
        token_bonus: float = 0.0,
        per_token: bool = False,
        judge: dict[str, Any] | None = None,
        chat_template: bool = False,
        eos_after_concepts: bool = False,
        mark_used_concepts: bool = False,
        lm_dtype: str = "float32",
        beam_plans: str = "",
    ) -> None:
        for name, value in (("top_k", top_k), ("max_new_tokens", max_new_tokens), ("max_tokens", max_tokens)):
            if int(value) < 1:
                raise ConfigError(f"env.kwargs.{name} = {value!r} must be >= 1")
        penalties = {"kl_coef": kl_coef, "repeat_penalty": repeat_penalty}
        others = {"unfinished_penalty": unfinished_penalty, "token_bonus": token_bonus}
        for name, value in {**penalties, **others}.items():
            if not value >= 0:
                raise ConfigError(f"env.kwargs.{name} = {value!r} must be >= 0 (0 turns it off)")
        lm = dict(lm or {"path": SHIPPED_LM})
        unknown = sorted(set(lm) - set(LM_KEYS))
        if unknown:
            raise ConfigError(f"env.kwargs.lm has unknown keys {unknown}; accepted: {list(LM_KEYS)}")
        self.top_k, self.max_new_tokens, self.max_tokens = int(top_k), int(max_new_tokens), int(max_tokens)
        self.kl_coef, self.per_token = float(kl_coef), bool(per_token)
        self.repeat_penalty, self.unfinished_penalty = float(repeat_penalty), float(unfinished_penalty)
        self.token_bonus = float(token_bonus)
        self.eos_after_concepts = bool(eos_after_concepts)
        self.all_records = load_prompts(prompts)
        self.records = split_records(self.all_records, split, prompts)
        self.reward_fn = make_reward(reward, reward_kwargs)
        self.reward_fn.check(self.records)

        path = str(lm.pop("path", "") or "")
        self.tokenizer = tokens.load_lm_tokenizer(path) if path else tokens.build_tokenizer(self.all_records)
        self.vocab_size = len(self.tokenizer)
        self.chat_template = bool(chat_template)
        self.eos_id = tokens.stop_token_id(self.tokenizer, self.chat_template)
        if lm_dtype not in LM_DTYPES:
            raise ConfigError(f"env.kwargs.lm_dtype = {lm_dtype!r}: use {' or '.join(LM_DTYPES)}")
        sizes = {"vocab_size": self.vocab_size, "max_positions": self.max_tokens, **lm}
        model = shared_causal_lm(path, dtype=lm_dtype, **sizes)
        self.reference = ReferenceLM(model, self.vocab_size, self.max_tokens)
        # Never allowed: padding and the other special tokens (EOS, the stop action, excepted).
        self.banned = np.zeros(self.vocab_size, dtype=bool)
        self.banned[[i for i in self.tokenizer.all_special_ids if i < self.vocab_size]] = True
        self.banned[self.eos_id] = False
        encoded = tokens.checked_prompt_ids(
            self.tokenizer,
            self.all_records,
            self.max_tokens,
            self.max_new_tokens,
            self.chat_template,
            prompts,
        )
        self._prompt_ids = [encoded[r.id] for r in self.records]
        # Checks every concept (the error names its prompt) and bounds the mask (max_allowed_actions).
        self._concept_ids = tokens.concept_ids(self.tokenizer, [r.concepts for r in self.records])
        # Each record's tokens per concept, so that a concept the text already uses leaves the mask.
        self._concept_groups = [
            tokens.concept_ids(self.tokenizer, [[c] for c in r.concepts]) for r in self.records
        ]
        self.judge = fluency.make_judge(judge)
        self.mark_used_concepts = bool(mark_used_concepts)
        self._marker = self.tokenizer.unk_token_id  # what a used concept reads as (mark_used_concepts)
        self._marks = self._concept_positions() if self.mark_used_concepts else []
        self._greedy: dict[str, Generation] = {}
        # beam_action's whole text, per prompt index: searched as it goes, or read from a file
        self._beam_plans = load_plans(Path(resolve_path(beam_plans)), self) if beam_plans else {}
        self._plan: list[int] = []

        high = max(self.vocab_size - 1, self.max_tokens)
        dtype = np.uint16 if high <= np.iinfo(np.uint16).max else np.int32
        bounds = np.full(1 + self.max_tokens, self.vocab_size - 1, dtype=dtype)
        bounds[0] = self.max_tokens
        self.observation_space = gym.spaces.Box(np.zeros_like(bounds), bounds, dtype=dtype)
        self.action_space = gym.spaces.Discrete(self.vocab_size)
        self.record: PromptRecord = self.records[0]
        self._index = 0
        self._generated: list[int] = []

    # --- text ---

    def generated_text(self, generated: list[int] | np.ndarray | None = None) -> str:
        """The text of `generated` token ids (default: this episode's), EOS and special tokens dropped."""
        ids = self._generated if generated is None else list(generated)
        return self.tokenizer.decode([i for i in ids if i != self.eos_id], skip_special_tokens=True).strip()

    def _score(self, record: PromptRecord, generated: np.ndarray | list[int], logp_sum: float) -> Generation:
        text = self.generated_text(generated)
        ended = len(generated) > 0 and int(generated[-1]) == self.eos_id
        reward = self.text_score(text, record) + kl_penalty(logp_sum, self.kl_coef)
        reward += self.token_bonus * len(generated)
        if not ended and len(generated) >= self.max_new_tokens:
            reward -= self.unfinished_penalty
        return Generation(
            text=text,
            tokens=np.asarray(generated, dtype=np.int64),
            reward=float(reward),
            coverage=coverage(words(text), record.concepts),
            success=self.reward_fn.success(text, record),
            metrics=self._text_metrics(record, text, ended, -logp_sum, len(generated)),
        )

    def text_score(self, text: str, record: PromptRecord) -> float:
        """The plug-in's score of `text` less the repetition penalty (0 for a text without words)."""
        found = words(text)
        if not found:
            return 0.0
        return self.reward_fn.score(text, record) - self.repeat_penalty * repetition(found)

    def _text_metrics(self, record: PromptRecord, text: str, ended: bool, nll: float, length: int) -> dict:
        """eos, the judge's nll, tokens and perplexity, and repetition metrics of a finished text;
        `nll` and `length` are the reference's (its judgement when no other judge is set)."""
        if self.judge is not None:
            nll, length = self.judge.nll(record.prompt, text, ended)
        return {
            "score": float(self.reward_fn.score(text, record)),
            "eos": float(ended),
            "judge_nll": float(nll),
            "judge_tokens": float(length),
            "perplexity": fluency.perplexity(nll, length),
            **fluency.text_metrics(words(text)),
        }

    def episode_text(self) -> str:
        """The prompt, the generated text and the reference LM's greedy text for the same prompt,
        each with its reward and coverage (what `textdqn eval --show` prints)."""
        r = self.record
        mine = self._score(r, self._generated, self._logp_sum)
        ref = self.reference_greedy(self._index)
        concepts = f"  [concepts: {', '.join(r.concepts)}]" if r.concepts else ""
        lines = [f"prompt {r.id}: {r.prompt}{concepts}"]
        for who, g in (("agent", mine), ("reference", ref)):
            lines.append(f"  {who + ':':11}{g.text or '(nothing)'}")
            m = g.metrics
            outcome = (
                f"reward {g.reward:.3f}, score {m['score']:.2f}, coverage {g.coverage:.2f}, success "
                f"{int(g.success)}, perplexity {m['perplexity']:.1f}, distinct-2 {m['distinct_2']:.2f}, "
                f"{'ended' if m['eos'] else 'cut at the limit'}"
            )
            lines.append(f"  {'':11}{outcome}")
        return "\n".join(lines)

    def save_run_files(self, run_dir: str | Path) -> None:
        """What a run directory needs to read this env's observations: the tokenizer, in
        run_dir/tokenizer. The trainer calls this once per run."""
        save_tokenizer(self.tokenizer, Path(run_dir) / "tokenizer")

    # --- masks and observations ---

    def action_mask(self) -> np.ndarray:
        """bool [V]: the reference's top-k next tokens (special tokens other than EOS left out),
        the tokens of the record's concepts the text does not use yet, and EOS (with
        eos_after_concepts, EOS only once every concept is used). Only EOS once the episode is
        over."""
        if self._done:
            mask = np.zeros(self.vocab_size, dtype=bool)
            mask[self.eos_id] = True
            return mask
        return self._allowed(self._state.logp, self._used)

    def _allowed(self, logp: np.ndarray, used: np.ndarray) -> np.ndarray:
        """The mask of a prefix whose next-token log-probs are `logp`, having used the record's
        concepts `used` (bool [C])."""
        mask = np.zeros(self.vocab_size, dtype=bool)
        mask[self.eos_id] = True
        k = min(self.top_k, self.vocab_size - 1)
        mask[np.argpartition(-np.where(self.banned, -np.inf, logp), k - 1)[:k]] = True
        for ids in itertools.compress(self._concept_groups[self._index], ~used):
            mask[ids] = True
        mask[self.banned] = False
        if self.eos_after_concepts and not used.all():
            mask[self.eos_id] = False  # an unused concept's tokens are allowed: never an empty mask
        return mask

    def max_allowed_actions(self) -> int:
        """The most actions `action_mask` allows at once (top-k + the split's largest set of
        concept tokens + EOS): the width of the replay's id-form masks (textdqn/masks.py)."""
        k = min(self.top_k, self.vocab_size - 1)
        return min(self.vocab_size, k + max(len(ids) for ids in self._concept_ids) + 1)

    @property
    def observations_grow(self) -> bool:
        """Whether each observation of an episode extends the one before (network.kv_cache
        needs it); not with mark_used_concepts, which rewrites the prompt."""
        return not self.mark_used_concepts

    def _concept_positions(self) -> list[list[np.ndarray]]:
        """Per record of the split, per concept: the prompt positions of the tokens spelling it
        (mark_used_concepts); ConfigError when the tokenizer has no unknown token to mark with."""
        if self._marker is None:
            raise ConfigError(
                "env.kwargs.mark_used_concepts needs a tokenizer with an unknown token to mark used "
                "concepts with; this reference LM's has none: set mark_used_concepts false"
            )
        return [
            [np.flatnonzero(np.isin(prompt, ids)) for ids in groups]
            for prompt, groups in zip(self._prompt_ids, self._concept_groups, strict=True)
        ]

    def _observation(self) -> np.ndarray:
        prompt = self._prompt_ids[self._index]
        if self.mark_used_concepts:
            marks = list(itertools.compress(self._marks[self._index], self._used))
            if marks:
                prompt = prompt.copy()
                prompt[np.concatenate(marks)] = self._marker
        ids = np.concatenate([prompt, np.asarray(self._generated, dtype=np.int64)])
        obs = np.zeros(self.observation_space.shape, dtype=self.observation_space.dtype)
        obs[0] = len(ids)
        obs[1 : 1 + len(ids)] = ids
        return obs

    # --- gymnasium API ---

    def plan_episodes(self, slot: int, slots: int, episodes: int) -> None:
        """Have the next resets take prompts in order, each once: of `episodes` evaluation
        episodes shared round-robin by `slots` envs, this env (number `slot`) takes episodes
        slot, slot + slots, ..., episode j on prompt j mod (prompts of the split). Resets past
        the plan draw prompts at random again. How evaluation covers every test prompt once."""
        self._plan = [j % len(self.records) for j in range(slot, episodes, slots)]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode on a random record of the split, or on `options["prompt_index"]`."""
        super().reset(seed=seed)
        index = (options or {}).get("prompt_index")
        if index is None and self._plan:
            index = self._plan.pop(0)
        if index is None:
            index = int(self.np_random.integers(len(self.records)))
        if not 0 <= index < len(self.records):
            count = len(self.records)
            raise IndexError(f"prompt_index {index} is out of range: the split has {count} prompts")
        self._index, self.record = int(index), self.records[index]
        self._generated, self._done, self._text, self._reward = [], False, "", 0.0
        self._beam: list[int] = []  # beam_action's text
        self._used = np.zeros(len(self.record.concepts), dtype=bool)
        self._potential = self._total = self._logp_sum = 0.0
        self._state: LMState = self.reference.start(self._prompt_ids[index])
        return self._observation(), {"action_mask": self.action_mask()}

    def step(self, action: int):
        token = self.step_begin(action)
        if token is not None:
            self.reference.advance(self._state, token)
        return self.step_end()

    # A step in two halves around the reference LM's read of the new token, so that a vector
    # env can read the tokens of all its envs in one batch (TextGenVectorEnv): step_begin
    # scores the action, step_end returns what step returns.

    def step_begin(self, action: int) -> int | None:
        """Append `action`, score it; the token the reference LM must read next (None when
        the episode is over)."""
        token = int(action)
        logp = float(self._state.logp[token])
        self._generated.append(token)
        self._logp_sum += logp
        self._done = token == self.eos_id or len(self._generated) >= self.max_new_tokens
        reward = kl_penalty(logp, self.kl_coef) + self.token_bonus
        self._text = self.generated_text()  # for the reward and for the next action mask
        self._used = covered(words(self._text), self.record.concepts)  # for the mask and observation
        if self.per_token or self._done:
            score = self.text_score(self._text, self.record)
            reward += score - self._potential  # without per_token the potential stays 0: the whole score
            if self.per_token:
                self._potential = score
        if self._done and token != self.eos_id:
            reward -= self.unfinished_penalty
        self._total += reward
        self._reward = float(reward)
        return None if self._done else token

    def step_end(self):
        """(obs, reward, terminated, truncated, info) of the step begun, once the reference LM
        has read its token."""
        info: dict = {"action_mask": self.action_mask()}
        if self._done:
            ended = self._generated[-1] == self.eos_id
            info.update(
                coverage=coverage(words(self._text), self.record.concepts),
                success=float(self.reward_fn.success(self._text, self.record)),
                length=float(len(self._generated)),
                reward=float(self._total),
                kl=-self._logp_sum,
                text=self._text,
                **self._text_metrics(self.record, self._text, ended, -self._logp_sum, len(self._generated)),
            )
        return self._observation(), self._reward, self._done, False, info
