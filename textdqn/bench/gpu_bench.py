"""`textdqn bench gpu`: the GPU figures in one command and one JSON file.

Made for one GPU machine of about 16 cores and under 10 minutes:

1. `bench learner` on the device, MLP and transformer Q-networks (in-process and Ray-fed);
2. `bench lm-learner` on the device: fp32, and on CUDA bf16 autocast too;
3. `configs/dialogue-text.yaml` trained to its target in local mode with the learner on the
   device and 12 rollout actors (the issue's target there: success 0.90 in <= 120 s).

Every part's figures go into one dict (`run_gpu_bench`), written as JSON by the command,
with the machine it ran on. `quick=True` shrinks every part (seconds of measuring, a
dialogue run of `QUICK_TRAIN_S`, 2 actors) so the wiring can be tested on a CPU machine
with device "cpu"; its figures mean nothing.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textdqn.config import load_config

DIALOGUE_CONFIG = "configs/dialogue-text.yaml"
ACTORS = 12
QUICK_TRAIN_S = 20
FULL_TRAIN_S = 360
"""The dialogue run's budget on a GPU machine: 3× the 120-s target, and the other parts take
about 3 minutes, so the command ends within 10."""


def machine(device: str) -> dict:
    """What the figures were measured on."""
    import torch

    out = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": device,
    }
    if device == "cuda" and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return out


def dialogue_overrides(device: str, quick: bool) -> tuple[str, ...]:
    """dialogue-text with the learner on `device` and 12 actors, stopped after FULL_TRAIN_S so
    the whole command stays under 10 minutes (quick: 2 actors, QUICK_TRAIN_S)."""
    sets = [f"learner.device={device}", f"actors.num_actors={2 if quick else ACTORS}"]
    if not quick:
        sets.append(f"stop.time_s={FULL_TRAIN_S}")
    else:
        sets += [f"stop.time_s={QUICK_TRAIN_S}", "eval.episodes=10", "eval.every_env_steps=2000",
                 "actors.warm_start_steps=500", "replay.rate_limiter.min_size_to_sample=200"]  # fmt: skip
    return tuple(sets)


def train_to_target(device: str, quick: bool, log: Callable[[str], None]) -> dict:
    """dialogue-text in local mode to its target; total time includes starting Ray and actors."""
    from textdqn.cluster.supervisor import train

    overrides = dialogue_overrides(device, quick)
    config = load_config(DIALOGUE_CONFIG, overrides)
    log(f"  {DIALOGUE_CONFIG} with {' '.join(overrides)} ...")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="textdqn-gpu-bench-") as tmp:
        summary = train(config, mode="ray", run_dir=str(Path(tmp) / "run"), live=False)
    total = time.perf_counter() - start
    log(f"  reached={summary['reached_target']} in {total:.1f} s total, {summary['env_steps']:,} env steps")
    return {
        "config": DIALOGUE_CONFIG,
        "overrides": list(overrides),
        "reached_target": summary["reached_target"],
        "total_s": total,
        "train_s": summary["wall_s"],
        "env_steps": summary["env_steps"],
        "updates": summary["updates"],
        "final_eval": summary["final_eval"],
        "learner_utilization": summary["learner_utilization"],
    }


def run_gpu_bench(device: str = "cuda", quick: bool = False, log: Callable[[str], None] = print) -> dict:
    """All three parts on `device`, as one JSON-ready dict."""
    from textdqn.bench.learner_bench import learner_settings, run_learner_bench
    from textdqn.bench.lm_bench import LMBenchSettings, run_lm_bench

    seconds = 1.0 if quick else 20.0
    result: dict = {"machine": machine(device), "quick": quick, "learner": {}}
    for network in ("mlp", "transformer"):
        log(f"bench learner --network {network} --device {device}")
        settings = learner_settings(network, seconds)
        if quick:
            settings = dataclasses.replace(settings, fill=2000, warmup_s=0.2)
        result["learner"][network] = run_learner_bench(settings, device, log=log)
    log(f"bench lm-learner --device {device}")
    lm = LMBenchSettings(seconds=seconds, batch=16 if quick else 256)
    result["lm_learner"] = run_lm_bench(lm, device, log=log)
    log("dialogue-text to its target")
    result["dialogue_text"] = train_to_target(device, quick, log)
    return result
