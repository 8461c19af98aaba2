"""The LM Q-network: a causal LM whose next-token logits are Q(s, ·) over its vocabulary, for
token-level generation envs (network.kind lm), and what builds it from a config."""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import Tensor, nn

from textdqn.errors import ConfigError
from textdqn.lm import max_positions
from textdqn.network_config import NetworkConfig
from textdqn.networks import q_values


class LMQNetwork(nn.Module):
    """Q(s, ·) over a causal LM's vocabulary: its next-token logits are the Q-values (Guo et
    al. 2022, "Efficient (Soft) Q-Learning for Text Generation"), for token-level generation
    envs such as textdqn/TextGen-v0, whose actions are the LM's tokens.

    lm: a transformers causal LM (see textdqn.lm.causal_lm), trained whole unless train_layers
        says otherwise. Its own LM head (tied to the input embeddings when the LM ties them) is
        the Q head, so with a pretrained checkpoint the initial greedy policy is the LM's greedy
        decoding. Its dropout is turned
        off: a noisy Q(s') would make noisy TD targets.
    dueling: Q = V(s) + logits − mean over the vocabulary of the logits, V a new linear head on
        the same hidden state, initialised to 0 (so at first Q = the centred logits: the same
        greedy policy). Logits are defined only up to a per-state constant, which softmax
        ignores but a bootstrapped target would not; centring drops that arbitrary level and
        V learns the state's value. False: Q = the logits (Soft Q-Learning's parameterisation).
    train_layers: N > 0 trains only the top N transformer layers and the final norm (and V);
        the embeddings, the LM head and the lower layers are frozen (network.lm_train_layers).
    q_scale: Q = q_scale × the above: a temperature that brings the logits (a trained LM's
        spread over ±10) to the rewards' scale (e.g. a coverage in [0, 1]) without changing
        the greedy policy, so training refines the LM's preferences instead of first shrinking
        every logit towards the targets.

    Observations are length-prefixed token rows: obs[:, 0] = L >= 1, obs[:, 1 : 1 + L] the
    prompt and generated tokens, then padding. The head is applied only to the final hidden
    state of the last real token (token position L − 1): [B, V] logits, never [B, T, V].
    Columns past the longest L in the batch are dropped; the attention mask covers the first
    L. (Causal attention alone already keeps position L − 1 from the padding after it; the
    mask states it to the model, which otherwise warns about unmasked pad ids.) Q is the
    head's output as is: LMs that transform logits further (e.g. soft-capping) differ there.

    forward(obs [B, 1 + T'], uint16/int32/int64) -> Q [B, V] (float32).
    """

    def __init__(
        self, lm: nn.Module, dueling: bool = True, q_scale: float = 1.0, train_layers: int = 0
    ) -> None:
        super().__init__()
        self.q_scale = float(q_scale)
        if getattr(lm, "base_model", lm) is lm or lm.get_output_embeddings() is None:
            raise ValueError(f"LMQNetwork needs a causal LM with a base model and an LM head, got {type(lm)}")
        self.lm = lm
        for module in lm.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
        if train_layers:
            _freeze_below(lm, train_layers)
        head = lm.get_output_embeddings()
        self.value = nn.Linear(head.weight.shape[1], 1) if dueling else None
        if self.value is not None:
            nn.init.zeros_(self.value.weight)
            nn.init.zeros_(self.value.bias)

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values [B, V] of length-prefixed token rows [B, 1 + T']."""
        obs = obs.long()
        # An all-zero row (no real token) reads token position 0: a finite, unused Q.
        lengths = obs[:, 0].clamp(1, obs.shape[1] - 1)
        width = int(lengths.max())
        tokens = obs[:, 1 : 1 + width]
        mask = torch.arange(width, device=obs.device) < lengths[:, None]
        hidden = self.lm.base_model(input_ids=tokens, attention_mask=mask.long(), use_cache=False)
        hidden = hidden.last_hidden_state
        last = hidden[torch.arange(len(obs), device=obs.device), lengths - 1]
        return q_values(last, self.lm.get_output_embeddings(), self.value, self.q_scale).float()


def check_train_layers(train_layers: int, layers: int) -> None:
    """ConfigError when network.lm_train_layers asks for more layers than the LM has."""
    if train_layers > layers:
        raise ConfigError(
            f"network.lm_train_layers = {train_layers} exceeds the LM's {layers} layers: set at most "
            f"{layers} (or 0 to train the whole LM)"
        )


def _freeze_below(lm: nn.Module, train_layers: int) -> None:
    """Freeze all of `lm` but its top `train_layers` transformer layers and its final norm (the
    modules after the layer list in its base model: GPT-2's ln_f, Llama's norm)."""
    lists = [m for m in lm.base_model.children() if isinstance(m, nn.ModuleList)]
    if len(lists) != 1:
        raise ConfigError(
            f"network.lm_train_layers: cannot find the transformer layers of {type(lm).__name__}"
        )
    layers = lists[0]
    check_train_layers(train_layers, len(layers))
    lm.requires_grad_(False)
    layers[len(layers) - train_layers :].requires_grad_(True)
    children = list(lm.base_model.children())
    for module in children[children.index(layers) + 1 :]:
        module.requires_grad_(True)


def make_lm_q_network(space: gym.spaces.Box, num_actions: int, config: NetworkConfig) -> LMQNetwork:
    from textdqn.lm import causal_lm

    max_tokens = int(space.shape[0]) - 1
    lm = causal_lm(**config.lm, vocab_size=num_actions, max_positions=max_tokens)
    source = f"network.lm = {config.lm!r}"
    vocab = lm.get_output_embeddings().weight.shape[0]
    if vocab != num_actions:
        raise ConfigError(
            f"{source} gives {vocab} logits (its vocabulary) but the env's action space has "
            f"{num_actions} actions, one per token: set network.lm to the env's lm (the LM the env's "
            "vocabulary comes from)"
        )
    positions = max_positions(lm) or max_tokens
    if positions < max_tokens:
        raise ConfigError(
            f"{source} takes at most {positions} tokens but observations hold up to {max_tokens}: "
            f"lower the env's maximum length to {positions} or use another checkpoint"
        )
    return LMQNetwork(lm, dueling=config.dueling, q_scale=config.q_scale, train_layers=config.lm_train_layers)
