"""Where each component asks Ray to run it, from the cluster's resources and `cluster.*`.

The learner asks for a share of the `learner` resource when some node has it (and for a GPU
when the cluster has one, see ray_runner); shards spread over nodes and ask for the
`replay` resource when some node has it; rollout actors go round-robin over the nodes that
have CPUs and neither resource, when such special nodes exist. On one machine's local Ray
none of this applies and Ray places everything on it.
"""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from textdqn.config import ClusterConfig

# A share small enough that many shards (or one learner) fit in a node's resource of 1.
_SHARE = 0.01


class Placement:
    """Ray actor options per component, decided once from the live cluster."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        resources = ray.cluster_resources()
        self.has_learner_nodes = resources.get(config.learner_resource, 0) > 0
        self.has_replay_nodes = resources.get(config.replay_resource, 0) > 0
        special = (config.learner_resource, config.replay_resource)
        self.actor_nodes = sorted(
            n["NodeID"]
            for n in ray.nodes()
            if n["Alive"]
            and n["Resources"].get("CPU", 0) > 0
            and not any(n["Resources"].get(r) for r in special)
        )

    def learner(self) -> dict:
        if self.has_learner_nodes:
            return {"resources": {self.config.learner_resource: _SHARE}}
        return {}

    def shard(self) -> dict:
        options: dict = {"scheduling_strategy": "SPREAD" if self.config.spread_shards else "DEFAULT"}
        if self.has_replay_nodes:
            options["resources"] = {self.config.replay_resource: _SHARE}
        return options

    def actor(self, index: int) -> dict:
        special = self.has_learner_nodes or self.has_replay_nodes
        if not (self.config.actors_elsewhere and special and self.actor_nodes):
            return {}
        node = self.actor_nodes[index % len(self.actor_nodes)]
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=True)}


def where(handle) -> dict:
    """Where a Ray actor runs: its node id and address, and the GPUs it was given."""
    return ray.get(handle.__ray_call__.remote(_where))


def _where(_actor) -> dict:
    context = ray.get_runtime_context()
    node = context.get_node_id()
    address = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node), "")
    return {"node": node, "address": address, "gpus": list(context.get_accelerator_ids().get("GPU", []))}
