"""Checks a run passes before its run directory is made or Ray starts.

Everything the driver can check on its own is checked here, so a bad input costs seconds
and leaves nothing behind that would block running the same command again: the env id and
its action space (and the domain, prompts and model files the env loads), the rule agent a
warm start needs, the learner's device, the stop criteria, and on resume that the
checkpoint's networks fit the config.
"""

from __future__ import annotations

from textdqn.config import Config
from textdqn.errors import ConfigError


def check_before_start(config: Config, mode: str, address: str | None, learner_state: dict | None) -> None:
    """ConfigError (or the env's own error) for anything that would fail the run later."""
    from textdqn.envs import check_warm_start, make_env

    stop = config.stop
    if not (stop.env_steps or stop.updates or stop.time_s or stop.target_metric):
        raise ConfigError(
            "no stop criterion is set, so the run would never end: set stop.env_steps, stop.updates, "
            "stop.time_s or stop.target_metric (e.g. --set stop.time_s=3600)"
        )
    env = make_env(config.env)  # unknown id, bad kwargs, missing domain/prompts/model files
    try:
        check_warm_start(config, env.has_wrapper_attr)
        spaces = (env.observation_space, env.action_space)
        if config.network.kv_cache and not getattr(env.unwrapped, "observations_grow", True):
            raise ConfigError(
                "network.kv_cache reads only each step's new token, but this env rewrites earlier "
                "tokens of its observations (env.kwargs.mark_used_concepts): turn one of them off"
            )
    finally:
        env.close()
    if config.learner.device == "cuda" and (mode == "serial" or address is None):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "learner.device = 'cuda' but torch sees no GPU on this machine: use learner.device=auto "
                "(cuda when there is one) or cpu"
            )
    if config.network.kind == "lm" and config.network.lm_train_layers:
        _check_train_layers(config)
    if learner_state is not None:
        _check_networks_fit(config, spaces, learner_state)


def _check_train_layers(config: Config) -> None:
    """network.lm_train_layers is at most the LM's layer count (read from its config.json)."""
    from textdqn.lm import layer_count
    from textdqn.lm_network import check_train_layers

    layers = layer_count(config.network.lm)
    if layers is not None:
        check_train_layers(config.network.lm_train_layers, layers)


def _check_networks_fit(config: Config, spaces: tuple, learner_state: dict) -> None:
    """The checkpoint's networks load into the networks this config builds."""
    from textdqn.networks import make_q_network

    net = make_q_network(*spaces, config.network)
    try:
        net.load_state_dict(learner_state["online"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise ConfigError(
            f"the checkpoint's Q-network does not fit the network this config builds ({first}); "
            "resume without changing network.* or env.* settings, or start a new run"
        ) from None
    trained = sum(p.requires_grad for p in net.parameters())
    groups = learner_state.get("optimizer", {}).get("param_groups", [])
    saved = sum(len(g["params"]) for g in groups)
    if groups and saved != trained:
        raise ConfigError(
            f"the checkpoint's optimizer holds {saved} trained tensors but this config trains {trained}: "
            "resume with the checkpoint's network.lm_train_layers (RUN_DIR/config.yaml), or start a new run"
        )
