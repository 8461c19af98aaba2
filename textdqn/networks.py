"""Q-networks: an MLP for vector observations, a transformer encoder for token observations,
both with an optional dueling head, and a causal LM whose next-token logits are the Q-values
(token-level text generation); `make_q_network` picks one from network.kind and the env's spaces.

The transformer networks are built with `transformers` from a config (nothing downloaded),
or around a local pretrained checkpoint; `transformers` is imported only when one is made,
so runs on vector observations do not pay for it.

Weights cross process boundaries as plain numpy arrays (`state_to_numpy` /
`load_numpy_state_`), never as pickled modules; tied weights (an LM head that is its input
embedding) travel once.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from textdqn.errors import ConfigError
from textdqn.lm import load_local, max_positions
from textdqn.network_config import KINDS, NetworkConfig


class MLPQNetwork(nn.Module):
    """Q(s, ·) for float observations.

    obs_dim: features per observation (the product of the observation shape).
    num_actions: A, the size of the Discrete action space.
    hidden: widths of the ReLU torso's layers; () maps observations straight to the head.
    dueling: Q = V + A − mean(A) over actions (Wang et al. 2016); otherwise one linear head.
    q_scale: Q = q_scale × the head's output (see q_values).

    forward(obs [B, ...]) -> Q [B, A]: dims after the first are flattened, obs cast to float.
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden: tuple[int, ...] = (256, 256),
        dueling: bool = True,
        q_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or num_actions < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"MLPQNetwork needs obs_dim >= 1, num_actions >= 1 and hidden widths >= 1; "
                f"got obs_dim={obs_dim}, num_actions={num_actions}, hidden={tuple(hidden)}"
            )
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.torso = nn.Sequential(*layers)
        self.dueling = dueling
        # Without dueling, `advantage` is the whole Q head.
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None
        self.q_scale = float(q_scale)

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values [B, A] of observations [B, obs_dim] (or [B, *shape], flattened)."""
        features = self.torso(obs.flatten(1).float())
        return q_values(features, self.advantage, self.value, self.q_scale)


def q_values(features: Tensor, advantage: nn.Module, value: nn.Module | None, scale: float = 1.0) -> Tensor:
    """Q [B, A] from features [B, F]: the advantage head alone, or V + A − mean(A) (dueling),
    times `scale`. Adam moves a weight by about lr a step whatever the gradient's size, so a
    head on normalised features (a transformer's) would take ~|Q| / lr steps to reach Q-values
    of a reward scale like the dialogue's ±80; a scale near that size makes them reachable.
    The heads' outputs are combined in float32 (under bf16 autocast too: a mean over an LM's
    vocabulary needs the precision)."""
    adv = advantage(features).float()
    if value is None:
        return scale * adv
    # Subtracting the mean advantage makes V and A identifiable (Wang et al. 2016, eq. 9).
    return scale * (value(features).float() + adv - adv.mean(dim=-1, keepdim=True))


class TransformerQNetwork(nn.Module):
    """Q(s, ·) for token-id observations (e.g. textdqn/Dialogue-v0 with observation="tokens").

    vocab_size: token ids lie in [0, vocab_size); 0 is padding, masked out of attention.
    max_tokens: T, the observation length (the encoder's position embeddings).
    num_actions: A, the size of the Discrete action space.
    layers, width, heads, ff: the encoder, a BERT encoder built from its config (random
        weights, no dropout, feed-forward ff wide (0: 4·width), SDPA attention).
    dueling: Q = V + A − mean(A) on the pooled state; otherwise one linear head.
    pretrained: a local directory with a transformers checkpoint (`AutoModel.from_pretrained`)
        used as the encoder instead (layers, width, heads ignored). Its token embeddings are
        resized to vocab_size: they carry meaning only if the env's tokenizer is the checkpoint's.

    The state is the final hidden state at position 0, the [CLS] token the env puts first (and
    keeps first when it truncates): attention can pick out what matters (the last user turn,
    the offered entry), whereas a mean over positions would dilute it as the dialogue grows.

    forward(tokens [B, T'], T' <= max_tokens, uint16/int32/int64) -> Q [B, A] (float32).
    """

    split_by_length = True
    """run a batch of short and long rows as two passes (see forward); False: always one"""

    def __init__(
        self,
        vocab_size: int,
        max_tokens: int,
        num_actions: int,
        layers: int = 2,
        width: int = 128,
        heads: int = 4,
        dueling: bool = True,
        pretrained: str = "",
        q_scale: float = 1.0,
        ff: int = 0,
    ) -> None:
        super().__init__()
        if min(vocab_size, max_tokens, num_actions, layers, width, heads) < 1 or width % heads:
            raise ValueError(
                "TransformerQNetwork needs vocab_size, max_tokens, num_actions, layers, width, heads >= 1 "
                f"and heads dividing width; got vocab_size={vocab_size}, max_tokens={max_tokens}, "
                f"num_actions={num_actions}, layers={layers}, width={width}, heads={heads}"
            )
        if pretrained:
            self.encoder = _load_encoder(pretrained, vocab_size, max_tokens)
        else:
            self.encoder = _build_encoder(vocab_size, max_tokens, layers, width, heads, ff or 4 * width)
        width = self.encoder.config.hidden_size
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None
        self.q_scale = float(q_scale)

    def forward(self, tokens: Tensor) -> Tensor:
        """Q-values [B, A] of token ids [B, T] (padded with 0)."""
        tokens = tokens.long()
        mask = tokens != 0
        mask[:, 0] = True  # an all-padding row still attends somewhere: finite Q, not NaN
        # Rows sorted by length in two halves, each cut to its own longest row, when the short
        # half is at most 3/4 as long: a learner batch of dialogues costs about 15 % less than
        # one pass at the longest row's length. Exact either way (padding is masked out).
        lengths = (mask * torch.arange(1, mask.shape[1] + 1, device=mask.device)).amax(dim=1)
        half = len(tokens) // 2
        order = lengths.argsort()
        short, longest = int(lengths[order[half - 1]]), int(lengths[order[-1]])
        if self.split_by_length and half >= 8 and 4 * short <= 3 * longest:
            halves = ((order[:half], short), (order[half:], longest))
            parts = [self._state(tokens[rows, :n], mask[rows, :n]) for rows, n in halves]
            state = torch.cat(parts)[order.argsort()]
        else:
            state = self._state(tokens[:, :longest], mask[:, :longest])
        return q_values(state.float(), self.advantage, self.value, self.q_scale)

    def _state(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """[CLS]'s final hidden state [B, width] of rows already cut to their longest real
        length (a batch costs its longest dialogue, not max_tokens; attention is quadratic)."""
        return self.encoder(input_ids=tokens, attention_mask=mask.long()).last_hidden_state[:, 0]


def _build_encoder(
    vocab_size: int, max_tokens: int, layers: int, width: int, heads: int, ff: int
) -> nn.Module:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ff,
        max_position_embeddings=max_tokens,
        type_vocab_size=1,
        # Dropout would make Q(s') noisy in the TD targets; the replay's variety regularises.
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=0,
        attn_implementation="sdpa",
    )
    return BertModel(config, add_pooling_layer=False)


def _load_encoder(path: str, vocab_size: int, max_tokens: int) -> nn.Module:
    from transformers import AutoModel

    encoder = load_local(AutoModel, path, "network.pretrained", "model")
    positions = max_positions(encoder) or max_tokens
    if positions < max_tokens:
        raise ConfigError(
            f"network.pretrained = {path!r} takes at most {positions} tokens but observations have "
            f"{max_tokens}: lower the env's max_tokens to {positions} or use another checkpoint"
        )
    if encoder.get_input_embeddings().num_embeddings != vocab_size:
        encoder.resize_token_embeddings(vocab_size)
    return encoder


def make_q_network(
    observation_space: gym.spaces.Space, action_space: gym.spaces.Space, config: NetworkConfig
) -> nn.Module:
    """The Q-network for an env's spaces (single-env spaces, not batched vector-env ones).

    A Discrete action space of A actions, and by config.kind: mlp, MLPQNetwork over the
    flattened Box observation; encoder, TransformerQNetwork over a 1-D integer Box of token ids
    >= 0 (vocabulary high.max() + 1, length shape[0]); lm, LMQNetwork over length-prefixed token
    rows [1 + T], the causal LM config.lm with A tokens and T positions; auto, mlp for float
    Boxes and encoder for token ids. Raises ConfigError for anything else.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"textdqn's Q-networks need a Discrete action space, got {action_space}; "
            "use an env with Discrete actions (or wrap yours to discretize them)"
        )
    num_actions = int(action_space.n)
    kind = _auto_kind(observation_space) if config.kind == "auto" else config.kind
    if kind == "mlp":
        if not isinstance(observation_space, gym.spaces.Box):
            raise ConfigError(f"network.kind = 'mlp' needs a Box observation space, got {observation_space}")
        obs_dim = int(np.prod(observation_space.shape))
        return MLPQNetwork(obs_dim, num_actions, tuple(config.hidden), config.dueling, config.q_scale)
    if kind not in ("encoder", "lm"):
        raise ConfigError(f"network.kind = {kind!r} is not a Q-network kind: expected one of {KINDS}")
    space = _token_space(observation_space, kind)
    if kind == "lm":
        from textdqn.lm_network import make_lm_q_network

        return make_lm_q_network(space, num_actions, config)
    return TransformerQNetwork(
        vocab_size=int(space.high.max()) + 1,
        max_tokens=int(space.shape[0]),
        num_actions=num_actions,
        layers=config.encoder_layers,
        width=config.encoder_width,
        heads=config.encoder_heads,
        dueling=config.dueling,
        pretrained=config.pretrained,
        q_scale=config.q_scale,
        ff=config.encoder_ff,
    )


def _is_token_box(space: gym.spaces.Space) -> bool:
    return (
        isinstance(space, gym.spaces.Box)
        and np.issubdtype(space.dtype, np.integer)
        and len(space.shape) == 1
        and space.low.min() >= 0
    )


def _auto_kind(space: gym.spaces.Space) -> str:
    """kind "auto": mlp for float Boxes, encoder for token ids."""
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return "mlp"
    if _is_token_box(space):
        return "encoder"
    if isinstance(space, gym.spaces.Box):
        raise ConfigError(
            f"observation space {space} holds {space.dtype} values of shape {space.shape}: the MLP "
            "Q-network takes float Box observations, the transformer Q-network token ids (a 1-D "
            "integer Box [T] with low >= 0)"
        )
    raise ConfigError(
        f"no Q-network for observation space {space}: supported are float Box "
        "observations (MLP Q-network) and 1-D integer Box observations of token ids "
        "(transformer Q-network)"
    )


def _token_space(space: gym.spaces.Space, kind: str) -> gym.spaces.Box:
    """`space` if it holds token ids as network.kind `kind` reads them; else ConfigError."""
    if _is_token_box(space) and (kind != "lm" or space.shape[0] >= 2):
        return space
    rows = "length-prefixed rows [1 + T] (obs[0] = L, then L token ids), T >= 1" if kind == "lm" else "[T]"
    raise ConfigError(
        f"network.kind = {kind!r} needs token-id observations, a 1-D integer Box with low >= 0 "
        f"holding {rows}; got {space}: use network.kind = 'auto' for other observations"
    )


def state_to_numpy(module: nn.Module, frozen: bool = True) -> dict[str, np.ndarray]:
    """The module's parameters and buffers as CPU numpy copies, by state-dict key.

    Dtypes are kept, except bfloat16 (which numpy lacks), sent as float32. The copies share
    no memory with the module, so they stay valid while training goes on. A tied tensor
    (one that another key already holds) is sent once, under its first key. `frozen=False`
    leaves out the frozen parameters (requires_grad off: with network.lm_train_layers, most
    of an LM), which every copy of the network holds from its construction; this is what
    the learner publishes.
    """
    skip = _tied_keys(module).keys() | (set() if frozen else _frozen_keys(module))
    return tensors_to_numpy({key: value for key, value in module.state_dict().items() if key not in skip})


def tensors_to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A state dict's tensors as CPU numpy copies (bfloat16 as float32): what `load_numpy_state_`
    takes, from a module (`state_to_numpy`) or a checkpoint's state dict."""
    out = {}
    for key, value in state.items():
        tensor = value.detach()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        out[key] = tensor.cpu().numpy().copy()
    return out


def load_numpy_state_(module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load arrays produced by `state_to_numpy` into `module` in place (onto its device/dtype).

    Read-only arrays (e.g. from Ray's object store) are fine: values are copied. Missing,
    unexpected or mis-shaped keys raise RuntimeError (naming them); a tied key may be
    missing when the key it is tied to is present, and a frozen parameter may be missing
    (`state_to_numpy(frozen=False)`): the module keeps its own.
    """
    tensors = {key: _to_tensor(value) for key, value in state.items()}
    for key, first in _tied_keys(module).items():
        if key not in tensors and first in tensors:
            tensors[key] = tensors[first]
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    missing = set(missing) - _frozen_keys(module)
    if missing or unexpected:
        raise RuntimeError(
            f"weights do not fit the {type(module).__name__}: missing keys {sorted(missing)}, "
            f"unexpected keys {sorted(unexpected)} (were they made for another network config?)"
        )


def _frozen_keys(module: nn.Module) -> set[str]:
    """State-dict keys of the parameters that do not train (every name of a tied one)."""
    return {key for key, p in module.named_parameters(remove_duplicate=False) if not p.requires_grad}


def _tied_keys(module: nn.Module) -> dict[str, str]:
    """State-dict keys whose tensor is an earlier key's (tied weights), mapped to that key."""
    first: dict[tuple, str] = {}
    tied = {}
    for key, value in module.state_dict().items():
        identity = (value.data_ptr(), value.dtype, tuple(value.shape), value.stride())
        if value.numel() and identity in first:
            tied[key] = first[identity]
        else:
            first.setdefault(identity, key)
    return tied


def _to_tensor(array: np.ndarray) -> Tensor:
    array = np.asarray(array)
    # torch warns on (and must not share) read-only memory: copy those arrays, view the rest.
    return torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)


def make_acting_network(envs: gym.vector.VectorEnv, config: NetworkConfig) -> nn.Module:
    """The Q-network for one env of `envs`, in eval mode and `config.act_dtype`: what actors and
    evaluators act with."""
    net = make_q_network(envs.single_observation_space, envs.single_action_space, config).eval()
    return net.to(getattr(torch, config.act_dtype))
