"""`textdqn/Dialogue-v0`: a slot-filling booking dialogue against the user simulator.

The agent is the system. Each step it picks one system act; the environment resolves its
arguments from the belief state (the value to confirm, the entry to offer or book, the
offered entry's value to inform), the simulated user answers, and the belief state is
updated from what the NLU *perceives* of that answer.

Reward (TC-Bot's, plus one rule): −1 a turn, −2 for a turn that cost the user's patience
(a repeated act, a wrong or unasked-for inform, ...); at the end +2·max_turns on success,
−max_turns on failure.
Observation "vector": belief-state features (last user intent and the slots it informed,
informed / confirmed / requested slots, the slots the agent has asked for and asked to
confirm, whether it has said nothing matches (the user settles for its fallback only
once), the agent's last act, turn, knowledge-base match counts, offer state, and, when
nothing matches, the heard constraints whose removal alone would leave a match: the
suspects of a mishearing).
Observation "tokens": the dialogue so far as text (`transcript`, rendered from the domain's
templates), tokenized by the domain's word-level tokenizer into `max_tokens` uint16 ids
([CLS], the turn counter [Tk], [USR]/[SYS] before each turn, the most recent tokens kept,
padded with 0).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import gymnasium as gym
import numpy as np

from textdqn.envs.dialogue import text
from textdqn.envs.dialogue.acts import USER_INTENTS, SystemAct, UserAct, system_acts
from textdqn.envs.dialogue.agents import rule_action
from textdqn.envs.dialogue.domain import (
    Domain,
    KnowledgeBase,
    UserGoal,
    domain_path,
    load_domain,
    make_goals,
    make_kb,
)
from textdqn.envs.dialogue.user_simulator import SystemTurn, UserSimulator, perceive
from textdqn.envs.word_tokenizer import save_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# What `eval --show` marks on a system turn, by the diagnostic that turn raised.
_MARKS = {
    "wrong_informs": "wrong inform",
    "repeated_acts": "repeated",
    "unrequested_informs": "not asked for",
    "offers_rejected": "offer rejected",
    "lapses": "patience lost",
    "user_left": "the user left",
    "changed_mind": "the user changed its mind",
    "relaxed": "the user settled for its fallback",
}
_MATCH_BUCKETS = (0, 1, 2, 6)  # match-count buckets: 0, 1, 2–5, 6+
OBSERVATIONS = ("vector", "tokens")


class TranscribedUser(UserSimulator):
    """The user simulator, writing down every turn to and from it as text in `transcript`.

    The user's side is what the user said (its own act, before NLU noise); the system's is
    its act with the arguments the environment resolved. Template variants are drawn from a
    generator jumped ahead of the env's at each reset, which draws nothing from the env's, so
    recording text leaves the env's random stream (goals, NLU noise) as it was.
    """

    def __init__(self, domain: Domain, kb: KnowledgeBase, max_turns: int = 40) -> None:
        super().__init__(domain, kb, max_turns)
        self.transcript: list[tuple[str, str]] = []
        self.marks: dict[int, list[str]] = {}  # transcript index -> what the user held against that turn
        self._rng = np.random.default_rng(0)

    def reset(self, goal: UserGoal, rng: np.random.Generator) -> UserAct:
        self._rng = np.random.Generator(rng.bit_generator.jumped())
        act = super().reset(goal, rng)
        self.transcript = [("user", text.render_user(act, self.domain, self._rng))]
        self.marks = {}
        return act

    def respond(self, turn: SystemTurn) -> UserAct:
        self.transcript.append(("system", text.render_system(turn, self.domain, self.kb, self._rng)))
        before = self.state.diagnostics()
        act = super().respond(turn)
        after = self.state.diagnostics()
        marks = [name for key, name in _MARKS.items() if after[key] > before[key]]
        if marks:
            self.marks[len(self.transcript) - 1] = marks
        self.transcript.append(("user", text.render_user(act, self.domain, self._rng)))
        return act


class DialogueEnv(gym.Env):
    """Task-oriented dialogue as an MDP over system dialogue acts.

    Args:
        domain: a shipped domain name ("movies", "restaurants") or a domain file path.
        nlu_error: probability of an intent error and of each slot-value error (0, 0.15, 0.3).
        max_turns: dialogue length limit, counting user and system turns.
        split: "train" or "test" goals.
        kb_seed: seed of the knowledge base and the goals (fixed per domain by default).
        observation: "vector" (belief-state features, float32) or "tokens" (the transcript's
            token ids, uint16 [max_tokens]).
        max_tokens: length of "tokens" observations.
    """

    metadata: ClassVar[dict] = {"render_modes": []}
    run_files: ClassVar[tuple[str, ...]] = ("domain",)
    """keyword arguments naming files a run directory keeps a copy of (envs/run_files.py)"""

    def __init__(
        self,
        domain: str = "movies",
        nlu_error: float = 0.0,
        max_turns: int = 40,
        split: str = "train",
        kb_seed: int = 0,
        observation: str = "vector",
        max_tokens: int = 256,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        text.check_max_tokens(max_tokens)
        self.observation, self.max_tokens = observation, int(max_tokens)
        self.domain, self.kb, (train, test) = _world(domain, kb_seed)
        self.goals = train if split == "train" else test
        self.acts = system_acts(self.domain)
        self.act_index = {(a.intent, a.slot): i for i, a in enumerate(self.acts)}
        self.nlu_error, self.max_turns = float(nlu_error), int(max_turns)
        self.user = TranscribedUser(self.domain, self.kb, max_turns)
        d = self.domain
        self._size = (
            len(USER_INTENTS)
            + 6 * len(d.informable)
            + len(d.requestable)
            + len(self.acts)
            + 2
            + len(_MATCH_BUCKETS)
            + 2
        )
        self.action_space = gym.spaces.Discrete(len(self.acts))
        if observation == "tokens":
            high = len(self.tokenizer) - 1
            self.observation_space = gym.spaces.Box(0, high, (self.max_tokens,), np.uint16)
        else:
            self.observation_space = gym.spaces.Box(0.0, 1.0, (self._size,), np.float32)

    # --- text ---

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """The current dialogue as ("user" | "system", text) turns, oldest first."""
        return self.user.transcript

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The domain's word-level tokenizer (built on first use; the same ids in every process)."""
        return text.build_tokenizer(self.domain)

    @cached_property
    def _encoder(self) -> text.TranscriptEncoder:
        """Tokenizes each new turn once (the transcript only grows within an episode)."""
        return text.TranscriptEncoder(self.tokenizer, self.max_tokens)

    def save_tokenizer(self, directory: str | Path) -> Path:
        """Write the tokenizer to `directory` (e.g. the run directory's tokenizer/); returns it."""
        return save_tokenizer(self.tokenizer, directory)

    def save_run_files(self, run_dir: str | Path) -> None:
        """What a run directory needs to read this env's observations: the tokenizer (in
        run_dir/tokenizer) when they are tokens. The trainer calls this once per run."""
        if self.observation == "tokens":
            self.save_tokenizer(Path(run_dir) / "tokenizer")

    def episode_text(self) -> str:
        """The current dialogue, readable: the user's goal, then each turn as "user: ..." or
        "system: ..." (what `textdqn eval --show` prints)."""
        lines = [text.render_goal(self.goal, self.domain)]
        for i, (speaker, said) in enumerate(self.transcript):
            marks = self.user.marks.get(i)
            lines.append(f"  {speaker + ':':8}{said}" + (f"   <- {', '.join(marks)}" if marks else ""))
        return "\n".join(lines)

    # --- belief state ---

    def _reset_belief(self) -> None:
        self.heard: dict[str, str] = {}  # slot -> value the system believes ("any" = don't care)
        self.confirmed: set[str] = set()
        self.said: set[tuple[str, str | None]] = set()  # (intent, slot) of every act the system said
        self.user_requests: set[str] = set()
        self.offered: int | None = None
        self.last_user = "greeting"
        self.last_informed: set[str] = set()  # slots the last user turn informed (as heard)
        self.last_act: int | None = None

    def _hear(self, act: UserAct) -> None:
        self.last_user = act.intent
        self.last_informed = set(act.inform)
        for slot, value in act.inform.items():
            if slot in self.domain.slots:
                self.heard[slot] = value
                if act.intent == "confirm_yes":
                    self.confirmed.add(slot)
        self.user_requests |= {r for r in act.request if r in self.domain.requestable}

    def _constraints(self) -> dict[str, str]:
        return {s: v for s, v in self.heard.items() if v != "any" and s in self.domain.kb_slots}

    def _matches(self) -> np.ndarray:
        """bool [size]: the entries that fit what the system heard."""
        return self.kb.match(self._constraints())

    def _suspects(self) -> set[str]:
        """The heard constraints that, dropped alone, would leave a matching entry."""
        heard = self._constraints()
        return {s for s in heard if self.kb.match({k: v for k, v in heard.items() if k != s}).any()}

    def _offer_fits(self, matches: np.ndarray) -> bool:
        """Whether an entry is offered and still fits what the system heard (`matches`)."""
        return self.offered is not None and bool(matches[self.offered])

    def action_mask(self) -> np.ndarray:
        """bool [A]: acts that make sense now (offer needs a match, book an offer, inform an
        offer that still fits what the system heard, ...)."""
        matches = self._matches()
        n_match = int(matches.sum())
        mask = np.ones(len(self.acts), dtype=bool)
        for i, act in enumerate(self.acts):
            if act.intent == "offer":
                mask[i] = n_match > 0
            elif act.intent == "book":
                mask[i] = self.offered is not None
            elif act.intent == "inform":  # never tell the values of an entry the user has ruled out
                mask[i] = self._offer_fits(matches)
            elif act.intent == "confirm":
                mask[i] = self.heard.get(act.slot, "any") != "any"
            elif act.intent == "no_match":
                mask[i] = n_match == 0
        return mask

    def _observation(self) -> np.ndarray:
        if self.observation == "tokens":
            return self._encoder.encode(self.transcript)
        d, obs = self.domain, []
        obs += [float(self.last_user == i) for i in USER_INTENTS]
        obs += [float(s in self.last_informed) for s in d.informable]
        obs += [float(s in self.heard) for s in d.informable]
        obs += [float(s in self.confirmed) for s in d.informable]
        obs += [float(("request", s) in self.said) for s in d.informable]
        obs += [float(("confirm", s) in self.said) for s in d.informable]
        obs.append(float(("no_match", None) in self.said))
        obs += [float(s in self.user_requests) for s in d.requestable]
        obs += [float(self.last_act == i) for i in range(len(self.acts))]
        obs.append(self.user.state.turns / self.max_turns)
        matches = self._matches()
        n = int(matches.sum())
        bucket = max(i for i, lo in enumerate(_MATCH_BUCKETS) if n >= lo)
        obs += [float(i == bucket) for i in range(len(_MATCH_BUCKETS))]
        obs.append(float(self.offered is not None))
        obs.append(float(self._offer_fits(matches)))
        suspects = self._suspects() if n == 0 else set()
        obs += [float(s in suspects) for s in d.informable]
        return np.clip(np.asarray(obs, dtype=np.float32), 0.0, 1.0)

    # --- gymnasium API ---

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        index = (options or {}).get("goal_index")
        if index is None:
            index = int(self.np_random.integers(len(self.goals)))
        self.goal = self.goals[index]
        self._reset_belief()
        self._hear(
            perceive(self.user.reset(self.goal, self.np_random), self.domain, self.nlu_error, self.np_random)
        )
        return self._observation(), {"action_mask": self.action_mask()}

    def step(self, action: int):
        act: SystemAct = self.acts[int(action)]
        turn = self._resolve(act)
        self.last_act = int(action)
        self.said.add((act.intent, act.slot))
        if act.intent == "offer":
            self.user_requests -= set(self.domain.offer_slots)
        lapses = self.user.state.lapses
        reply = self.user.respond(turn)
        self._hear(perceive(reply, self.domain, self.nlu_error, self.np_random))
        if act.intent == "inform":
            self.user_requests.discard(act.slot)
        state = self.user.state
        reward = -1.0 - (state.lapses - lapses)  # a turn that cost the user's patience costs one more
        info: dict = {"action_mask": self.action_mask()}
        if state.done:
            reward += 2 * self.max_turns if state.success else -self.max_turns
            info.update(success=float(state.success), turns=float(state.turns), **state.diagnostics())
        return self._observation(), reward, state.done, False, info

    def rule_action(self) -> int:
        """The rule-based baseline's next act (see agents.py); also TC-Bot's warm-start policy."""
        return rule_action(self)

    def _resolve(self, act: SystemAct) -> SystemTurn:
        if act.intent == "confirm":
            return SystemTurn(act, value=self.heard.get(act.slot))
        if act.intent == "offer":
            matches = np.flatnonzero(self._matches())
            self.offered = int(matches[0]) if len(matches) else None
            return SystemTurn(act, entry=self.offered)
        if act.intent == "book":
            return SystemTurn(act, entry=self.offered)
        if act.intent == "inform" and self.offered is not None:
            return SystemTurn(act, value=self.kb.entry(self.offered)[act.slot], entry=self.offered)
        return SystemTurn(act)


def _world(domain: str, kb_seed: int) -> tuple[Domain, KnowledgeBase, tuple[list[UserGoal], list[UserGoal]]]:
    """The domain, its knowledge base and its (train, test) goals: built once per process for
    a file and seed (a run makes dozens of envs; drawing 2,000 goals took 0.25 s an env), and
    again when the file changes. All three are read-only to the envs that share them."""
    path = domain_path(domain)
    return _built_world(str(path.resolve()), path.stat().st_mtime_ns, kb_seed)


@lru_cache(maxsize=8)
def _built_world(path: str, mtime_ns: int, kb_seed: int):
    d = load_domain(path)
    kb = make_kb(d, kb_seed)
    return d, kb, make_goals(d, kb, kb_seed)
