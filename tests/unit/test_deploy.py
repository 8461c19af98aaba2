"""The cluster files in deploy/ pass Ray's own checks for `ray up`, and keep our placement and
security rules. Offline: nothing here calls a cloud, SSH or Kubernetes.

`check_cluster_file` does what `ray up` does before it calls the provider
(ray.autoscaler._private.commands._bootstrap_config in Ray 2.60): Ray's JSON schema
(ray/autoscaler/ray-schema.json) on the file as written, `prepare_config` (defaults of the
provider, `prepare_local` for on-prem, setup commands merged, per-type min/max workers), then
`validate_config` (the schema again on the prepared config, head type, worker totals). The
provider's own `fillout_available_node_types_resources` and `bootstrap_config` are left out:
they call AWS/GCP APIs.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="Ray's autoscaler validation needs jsonschema")
try:
    import ray.autoscaler
    from ray.autoscaler._private.local.config import LOCAL_CLUSTER_NODE_TYPE
    from ray.autoscaler._private.util import prepare_config, validate_config
except ImportError as e:  # pragma: no cover - only without ray[default]
    pytest.skip(f"Ray's autoscaler cannot be imported: {e}", allow_module_level=True)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RAY_UP_FILES = ["aws.yaml", "gcp.yaml", "onprem.yaml"]
CLOUD_FILES = ["aws.yaml", "gcp.yaml"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text())


def _schema() -> dict[str, Any]:
    path = os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")
    with open(path) as f:
        return json.load(f)


def check_cluster_file(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's checks of `ray up` short of calling the provider; returns the prepared config."""
    jsonschema.validate(config, _schema())
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _start_commands(prepared: dict[str, Any]) -> list[str]:
    return prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]


def _all_commands(prepared: dict[str, Any]) -> list[str]:
    keys = [k for k in prepared if k.endswith("_commands")]
    cmds = [c for k in keys for c in prepared[k]]
    for node_type in prepared["available_node_types"].values():
        cmds += node_type.get("worker_setup_commands", []) + node_type.get("initialization_commands", [])
    return cmds


def _head_ray_start(prepared: dict[str, Any]) -> str:
    (cmd,) = [c for c in prepared["head_start_ray_commands"] if "ray start" in c]
    return cmd


# --- Ray's own checks ----------------------------------------------------------------------


@pytest.mark.parametrize("name", RAY_UP_FILES)
def test_ray_up_accepts_the_cluster_file(name):
    prepared = check_cluster_file(_load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_onprem_is_prepared_as_ray_up_prepares_a_list_of_hosts():
    config = _load("onprem.yaml")
    assert config["provider"]["type"] == "local"
    prepared = check_cluster_file(config)
    node_type = prepared["available_node_types"][LOCAL_CLUSTER_NODE_TYPE]
    n_hosts = len(config["provider"]["worker_ips"])
    assert node_type["min_workers"] == node_type["max_workers"] == n_hosts


def _without_provider(c):
    del c["provider"]


def _string_max_workers(c):
    node_type = next(n for n in c.get("available_node_types", {}) if n != c.get("head_node_type"))
    c["available_node_types"][node_type]["max_workers"] = "4"


def _misspelled_top_level_key(c):
    c["head_start_ray_command"] = c.pop("head_start_ray_commands")


def _head_type_missing(c):
    c["head_node_type"] = "no_such_type"


def _node_type_without_resources(c):
    node_type = next(iter(c["available_node_types"]))
    del c["available_node_types"][node_type]["resources"]


def _min_workers_above_max_workers(c):
    c["max_workers"] = 0


def _onprem_without_worker_ips(c):
    del c["provider"]["worker_ips"]


def _onprem_with_node_types(c):
    c["available_node_types"] = {"head": {"resources": {"CPU": 0}, "node_config": {}}}
    c["head_node_type"] = "head"


BROKEN = (
    [(name, breaker) for name in RAY_UP_FILES for breaker in (_without_provider, _misspelled_top_level_key)]
    + [
        (name, breaker)
        for name in CLOUD_FILES
        for breaker in (
            _string_max_workers,
            _head_type_missing,
            _node_type_without_resources,
            _min_workers_above_max_workers,
        )
    ]
    + [("onprem.yaml", _onprem_without_worker_ips), ("onprem.yaml", _onprem_with_node_types)]
)


# What Ray says about each breakage: (exception, a phrase of its message).
EXPECTED = {
    _without_provider: ("ValidationError", "'provider' is a required property"),
    _misspelled_top_level_key: ("ValidationError", "'head_start_ray_command' was unexpected"),
    _string_max_workers: ("ValidationError", "'4' is not of type 'integer'"),
    _head_type_missing: ("ValueError", "`head_node_type` must be one of"),
    _node_type_without_resources: ("ValidationError", "'resources' is a required property"),
    _min_workers_above_max_workers: ("ValueError", "smaller than the sum of `min_workers`"),
    _onprem_without_worker_ips: ("ClickException", "list of `worker_ips`"),
    _onprem_with_node_types: ("ClickException", "available_node_types is not supported"),
}


@pytest.mark.parametrize(
    ("name", "breaker"), BROKEN, ids=[f"{n}-{b.__name__.lstrip('_')}" for n, b in BROKEN]
)
def test_the_same_check_rejects_a_broken_file(name, breaker):
    import click  # ray's cli_logger.abort (used by prepare_local) raises a ClickException

    exc_name, phrase = EXPECTED[breaker]
    exc = {
        "ValidationError": jsonschema.ValidationError,
        "ValueError": ValueError,
        "ClickException": click.ClickException,
    }[exc_name]
    config = _load(name)
    breaker(config)
    with pytest.raises(exc) as info:
        check_cluster_file(config)
    assert phrase in str(info.value)


# --- our placement rules -------------------------------------------------------------------


@pytest.mark.parametrize("name", CLOUD_FILES)
def test_cloud_node_types_place_head_learner_actors_and_replay(name):
    config = _load(name)
    types = check_cluster_file(config)["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "the head must run no training work"
    assert head["max_workers"] == 0

    learners = [t for t in types.values() if t["resources"].get("learner", 0) >= 1]
    assert learners and all(t["resources"].get("GPU", 0) >= 1 for t in learners)

    replay = [t for t in types.values() if t["resources"].get("replay", 0) >= 1]
    assert replay and all(t["min_workers"] == 0 for t in replay), "replay nodes are optional"

    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    if name == "aws.yaml":
        spot = [
            t
            for t in workers
            if t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"
        ]
    else:
        spot = [t for t in workers if t["node_config"].get("scheduling", {}).get("preemptible") is True]
    assert spot, "actors should run on spot/preemptible nodes"
    for t in spot:
        assert "learner" not in t["resources"] and "replay" not in t["resources"]
        assert t["resources"].get("CPU", 0) > 0
    if name == "gcp.yaml":
        for t in workers:
            scheduling = t["node_config"].get("scheduling", {})
            assert isinstance(scheduling, dict), "GCP's scheduling is an object, not a list"


@pytest.mark.parametrize("name", CLOUD_FILES)
def test_torch_is_the_cuda_build_on_the_learner_and_the_cpu_build_elsewhere(name):
    config = _load(name)
    prepared = check_cluster_file(config)
    for node_name, t in prepared["available_node_types"].items():
        if node_name == config["head_node_type"]:
            cmds = prepared["head_setup_commands"]
        else:
            cmds = t.get("worker_setup_commands", prepared["worker_setup_commands"])
        torch = [c for c in cmds if "pip install torch" in c]
        assert len(torch) == 1, (node_name, cmds)
        want = "/whl/cu" if t["resources"].get("GPU", 0) else "/whl/cpu"
        assert want in torch[0], (node_name, torch[0])
        assert any(re.search(r"textdqn @ git\+https://github\.com/\S+/textdqn@\S+", c) for c in cmds)


def test_onprem_roles_come_from_the_start_commands():
    prepared = check_cluster_file(_load("onprem.yaml"))
    assert "--num-cpus=0" in _head_ray_start(prepared)
    worker = " ".join(prepared["worker_start_ray_commands"])
    assert "nvidia-smi" in worker and '"learner": 1' in worker and '"replay": 1' in worker
    assert '--resources="$RESOURCES"' in worker


# --- security ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RAY_UP_FILES)
def test_the_dashboard_is_on_localhost_and_ports_are_fixed(name):
    prepared = check_cluster_file(_load(name))
    for cmd in _start_commands(prepared):
        assert "0.0.0.0" not in cmd, cmd
    head = _head_ray_start(prepared)
    assert "--dashboard-host=127.0.0.1" in head
    for cmd in [head, *[c for c in prepared["worker_start_ray_commands"] if "ray start" in c]]:
        for flag in (
            "--node-manager-port=",
            "--object-manager-port=",
            "--min-worker-port=",
            "--max-worker-port=",
            "--dashboard-agent-grpc-port=",
            "--dashboard-agent-listen-port=",
        ):
            assert flag in cmd, (flag, cmd)


@pytest.mark.parametrize("name", RAY_UP_FILES)
def test_the_ports_comment_matches_the_start_commands(name):
    text = (DEPLOY / name).read_text()
    head = _head_ray_start(check_cluster_file(_load(name)))
    for flag, port in re.findall(r"--([a-z-]+-port)=(\d+)", head):
        assert re.search(rf"^#\s+.*\b{port}\b.*", text, re.M), f"port {port} ({flag}) not in the comments"


@pytest.mark.parametrize("name", RAY_UP_FILES)
def test_redis_on_the_head_has_a_password_a_private_bind_and_an_fsynced_aof(name):
    prepared = check_cluster_file(_load(name))
    (redis,) = [c for c in prepared["head_setup_commands"] if "redis-server --" in c]
    assert "--requirepass" in redis
    assert "--appendonly yes" in redis and "--appendfsync everysec" in redis
    bind = re.search(r"--bind (.+?) --", redis).group(1)
    assert "0.0.0.0" not in bind and "*" not in bind
    assert "--port 6379" not in redis, "6379 is the GCS's port on the head"
    # The password comes from a mounted file, never from the cluster file itself.
    assert "redis-password" in redis
    assert any("redis-password" in k for k in prepared["file_mounts"])
    for cmd in _all_commands(prepared):
        assert not re.search(r"requirepass ['\"]?[A-Za-z0-9]", cmd), cmd


# --- KubeRay -------------------------------------------------------------------------------
# No KubeRay CRD schema is installable offline; these are the fields KubeRay's v1 RayJob CRD
# requires or that our placement needs (read from ray.io_rayjobs.yaml, KubeRay 1.6-1.7).


def _rayjob() -> dict[str, Any]:
    return _load("kuberay-rayjob.yaml")


def _groups(job):
    spec = job["spec"]["rayClusterSpec"]
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def test_rayjob_has_the_fields_kuberay_requires():
    job = _rayjob()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["metadata"]["name"]
    entry = job["spec"]["entrypoint"]
    assert entry.startswith("textdqn train ") and "--address auto" in entry
    cluster = job["spec"]["rayClusterSpec"]
    assert isinstance(cluster["headGroupSpec"]["rayStartParams"], dict)
    for group in _groups(job):
        containers = group["template"]["spec"]["containers"]
        assert containers and containers[0]["name"] and containers[0]["image"]
        for value in group.get("rayStartParams", {}).values():
            assert isinstance(value, str), "rayStartParams values are strings in the CRD"
    for group in cluster["workerGroupSpecs"]:
        for key in ("groupName", "replicas", "minReplicas", "maxReplicas", "template"):
            assert key in group, (group.get("groupName"), key)
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def _custom_resources(group) -> dict[str, Any]:
    raw = group.get("rayStartParams", {}).get("resources")
    return json.loads(json.loads(raw)) if raw else {}


def test_rayjob_places_head_learner_actors_and_replay():
    job = _rayjob()
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    workers = cluster["workerGroupSpecs"]
    learner = [g for g in workers if _custom_resources(g).get("learner", 0) >= 1]
    assert len(learner) == 1
    (container,) = learner[0]["template"]["spec"]["containers"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert "cuda" in container["image"]
    replay = [g for g in workers if _custom_resources(g).get("replay", 0) >= 1]
    assert replay and replay[0]["minReplicas"] == 0
    actors = [g for g in workers if not _custom_resources(g)]
    assert actors and all("cuda" not in g["template"]["spec"]["containers"][0]["image"] for g in actors)


def test_rayjob_is_not_exposed():
    job = _rayjob()
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress", False)
    assert cluster["authOptions"]["mode"] == "token"
    text = (DEPLOY / "kuberay-rayjob.yaml").read_text()
    for group in _groups(job):
        assert "0.0.0.0" not in json.dumps(group.get("rayStartParams", {}))
    assert "LoadBalancer" not in text.split("apiVersion:", 1)[1]


# --- the README ----------------------------------------------------------------------------


def test_readme_names_every_file_and_the_steps():
    text = (DEPLOY / "README.md").read_text()
    for needle in (
        "ray up deploy/aws.yaml",
        "ray dashboard deploy/aws.yaml",
        "ray job submit",
        "--address auto",
        "ray job logs",
        "ray down",
        "--resume",
        "kubectl apply -f deploy/kuberay-rayjob.yaml",
        "gcp.yaml",
        "onprem.yaml",
        "requirepass",
    ):
        assert needle in text, needle
