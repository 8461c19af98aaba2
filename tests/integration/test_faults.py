"""Faults and bad input, one test per finding of the issue "A training run that survives faults
and bad input": real processes killed by pid, real bad files, and the outcome asserted (the
run finishes, or ends with the expected one-line message, exit code and no stray process)."""

import json
import os
import shutil
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tests.integration import processes
from textdqn.cli import app

pytestmark = pytest.mark.integration


def _cli(*args: str) -> SimpleNamespace:
    """`textdqn ARGS` in this process: exit code and output with the console's line wrapping undone."""
    result = CliRunner().invoke(app, list(args))
    return SimpleNamespace(exit_code=result.exit_code, output=" ".join(result.output.split()))


def test_1_a_killed_learner_restarts_from_its_checkpoint_and_training_goes_on(tmp_path):
    run = tmp_path / "run"
    options = ["--set", "run.checkpoint_every_updates=300", "--set", "stop.updates=1500"]
    proc = processes.train(run, *options, "--set", "stop.target_value=1000")
    try:
        processes.wait_until((run / "checkpoints" / "latest.json").exists, proc, run)
        learner = processes.wait_for_descendant(proc.pid, "ray::LearnerActor")
        os.kill(learner, signal.SIGKILL)
        assert processes.finish(proc, timeout=400) == 0, processes.log_of(run)
    finally:
        processes.finish(proc, timeout=1)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner_restarts"] == 1 and summary["updates"] >= 1500
    assert "restarting it from the checkpoint at" in processes.log_of(run)


def test_2_sigterm_ends_a_run_like_ctrl_c_with_checkpoint_and_summary(tmp_path):
    run = tmp_path / "run"
    proc = processes.train(run, "--set", "stop.target_value=1000")
    try:
        processes.wait_until(lambda: processes.metric_rows(run) >= 3, proc, run)
        tree = processes.descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = processes.finish(proc, timeout=120)
    finally:
        processes.finish(proc, timeout=1)
    assert code == 130, processes.log_of(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] and summary["updates"] > 0
    assert list((run / "checkpoints").glob("learner-*.pt"))
    time.sleep(3)
    assert [pid for pid in tree if processes.alive(pid)] == []  # Ray's processes went with it


def test_3_the_last_rollout_actor_past_its_restarts_ends_the_run_with_the_reason(tmp_path):
    run = tmp_path / "run"
    proc = processes.train(
        run,
        "--set",
        "actors.num_actors=1",
        "--set",
        "actors.max_restarts=1",
        "--set",
        "stop.target_value=1000",
    )
    try:
        for _ in range(2):  # the first death is replaced, the second is one too many
            actor = processes.wait_for_descendant(proc.pid, "ray::RolloutActor")
            time.sleep(4)
            os.kill(actor, signal.SIGKILL)
            time.sleep(3)
        code = processes.finish(proc, timeout=120)
    finally:
        processes.finish(proc, timeout=1)
    log = processes.log_of(run)
    assert code == 2, log
    assert "every rollout actor is gone" in log and "Traceback" not in log
    summary = json.loads((run / "summary.json").read_text())
    assert "every rollout actor is gone (the last, 0, died 2 times" in summary["error"]
    assert summary["actor_restarts"] >= 1 and "starting a new one (1 of 1)" in log


def test_4_an_env_that_keeps_failing_ends_the_run_with_its_error(tmp_path):
    import tests.integration.failing_env  # noqa: F401  (registers tests/Failing-v0)

    run = tmp_path / "run"
    result = _cli(
        "train", processes.CARTPOLE, "--serial", "--quiet", "--run-dir", str(run),
        "--set", "env.id=tests/Failing-v0", "--set", "stop.time_s=120", "--set", "stop.target_value=1000",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "failed 21 steps in a row" in result.output and "simulator backend unreachable" in result.output
    assert "Traceback" not in result.output
    assert "simulator backend unreachable" in json.loads((run / "summary.json").read_text())["error"]


def test_4_and_11_a_domain_file_missing_a_template_is_refused_before_the_run(tmp_path):
    domain = Path("textdqn/envs/dialogue/domains/movies.yaml").read_text()
    broken = tmp_path / "movies-broken.yaml"
    broken.write_text("\n".join(line for line in domain.splitlines() if "reject:" not in line))
    result = _cli("train", "configs/dialogue.yaml", "--quiet", "--run-dir", str(tmp_path / "run"),
                  "--set", f"env.kwargs.domain={broken}")  # fmt: skip
    assert result.exit_code == 2 and "has no sentences for templates.user.reject" in result.output
    assert not (tmp_path / "run").exists()


def _bad_lm(tmp_path, damage: str) -> Path:
    shipped = Path("textdqn/envs/textgen/data/concepts-lm")
    lm = tmp_path / "lm"
    shutil.copytree(shipped, lm)
    (lm / damage).write_bytes(b"\x00garbage, not a weights file" * 10)
    return lm


@pytest.mark.parametrize(
    "config, setting, message",
    [
        ("configs/dialogue.yaml", "env.kwargs.domain={dir}/domain.yaml", "is not valid YAML at line 4"),
        ("configs/textgen.yaml", "env.kwargs.prompts={dir}/prompts.jsonl", "is not UTF-8 text"),
        ("configs/textgen.yaml", "lm={dir}/lm", "cannot be loaded as a transformers"),
        ("configs/textgen.yaml", "env.kwargs.prompts={dir}/zebra.jsonl", "does not know (['zebra'] read as"),
        ("configs/textgen.yaml", "env.kwargs.prompts={dir}/zebra2.jsonl", "concept 'zebra' of prompt 2"),
    ],
)
def test_11_bad_data_files_are_one_clear_line_each(tmp_path, config, setting, message):
    (tmp_path / "domain.yaml").write_text("name: movies\nentity: x\nkb_slots: [unclosed\n")
    (tmp_path / "prompts.jsonl").write_bytes(b'{"id": "p1", "concepts": ["caf\xe9"]}\n')
    records = [("p1", "dog", "train"), ("p2", "zebra", "train"), ("p3", "ball", "test")]
    lines = [json.dumps({"id": i, "concepts": [c], "split": s, "prompt": f"use: {c}"}) for i, c, s in records]
    (tmp_path / "zebra.jsonl").write_text("\n".join(lines) + "\n")  # zebra in a prompt
    lines = [json.dumps({"id": i, "concepts": [c], "split": s, "prompt": "use: dog"}) for i, c, s in records]
    (tmp_path / "zebra2.jsonl").write_text("\n".join(lines) + "\n")  # zebra a concept only
    _bad_lm(tmp_path, "model.safetensors")
    overrides = ["--set", setting.format(dir=tmp_path)]
    if setting.startswith("lm="):  # the env's reference LM and the Q-network's are one checkpoint
        lm = str(tmp_path / "lm")
        overrides = ["--set", f"env.kwargs.lm.path={lm}", "--set", f"network.lm.path={lm}"]
    result = _cli("train", config, "--quiet", "--run-dir", str(tmp_path / "run"), *overrides)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("env.id=Nope-v0", "env.id = 'Nope-v0' cannot be made"),
        ("env.id=MountainCarContinuous-v0", "textdqn needs a Discrete one"),
        ("env.kwargs.domain=nowhere", "nowhere"),
        ("learner.device=cuda", "learner.device = 'cuda' but torch sees no GPU"),
    ],
)
def test_5_and_7_a_failed_start_says_why_first_and_leaves_nothing_behind(
    tmp_path, monkeypatch, override, message
):
    import textdqn.cluster.ray_runner

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a run whose input could be checked without it")

    monkeypatch.setattr(textdqn.cluster.ray_runner, "init_ray", no_ray)
    run = tmp_path / "e01"
    config = "configs/dialogue.yaml" if "domain" in override else processes.CARTPOLE
    for _ in range(2):  # the same command again gives the same answer, not "already holds a run"
        result = _cli("train", config, "--quiet", "--run-dir", str(run), "--set", override)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output and "ActorDiedError" not in result.output
        assert not run.exists()


def test_6_the_first_evaluation_finds_weights_before_any_update(tmp_path):
    run = tmp_path / "run"
    result = _cli(
        "train", processes.CARTPOLE, "--quiet", "--run-dir", str(run),
        "--set", "replay.rate_limiter.samples_per_insert=0", "--set", "eval.every_env_steps=5000",
        "--set", "stop.env_steps=20000", "--set", "stop.target_value=1000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    evals = [r.split(",")[header.index("eval_return_mean")] for r in rows[1:]]
    assert any(evals)


def test_7_a_resume_whose_network_does_not_fit_its_checkpoint_says_so(tmp_path):
    run = tmp_path / "run"
    first = _cli(
        "train", processes.CARTPOLE, "--serial", "--quiet", "--run-dir", str(run), "--set", "stop.updates=20",
        "--set", "eval.every_env_steps=0", "--set", "eval.episodes=2", "--set", "eval.num_envs=2",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    metrics = (run / "metrics.csv").read_text()
    result = _cli("train", "--resume", str(run), "--serial", "--set", "network.hidden=[64,64]")
    assert result.exit_code == 2 and "does not fit the network this config builds" in result.output
    assert "Traceback" not in result.output
    assert (run / "metrics.csv").read_text() == metrics  # nothing appended


def test_8_a_broken_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run = tmp_path / "run"
    args = ["--serial", "--quiet", "--set", "eval.every_env_steps=0", "--set", "eval.episodes=2"]
    assert (
        _cli("train", processes.CARTPOLE, "--run-dir", str(run), *args, "--set", "stop.updates=20").exit_code
        == 0
    )
    assert _cli("train", "--resume", str(run), *args, "--set", "stop.updates=60").exit_code == 0
    files = sorted((run / "checkpoints").glob("learner-*.pt"))
    assert len(files) == 2
    for damage in (b"", files[-1].read_bytes()[:1000]):  # zero bytes, then truncated
        files[-1].write_bytes(damage)
        result = _cli("eval", str(run), "--episodes", "2")
        assert result.exit_code == 0 and "return_mean" in result.output, result.output
    resumed = _cli("train", "--resume", str(run), *args, "--set", "stop.updates=80")
    assert resumed.exit_code == 0, resumed.output


def test_9_resume_continues_epsilon_records_its_overrides_and_checks_config(tmp_path):
    run = tmp_path / "run"
    args = ["--serial", "--quiet", "--set", "eval.every_env_steps=0", "--set", "eval.episodes=2"]
    assert (
        _cli("train", processes.CARTPOLE, "--run-dir", str(run), *args, "--set", "stop.updates=20").exit_code
        == 0
    )
    before = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert min(before["actor_env_steps"]) > 0
    refused = _cli("train", "configs/dialogue.yaml", "--resume", str(run), *args)
    assert refused.exit_code == 2 and "differs from it" in refused.output and "env.id" in refused.output
    result = _cli(
        "train", "--resume", str(run), *args, "--set", "stop.updates=60", "--set", "learner.lr=0.002"
    )
    assert result.exit_code == 0, result.output
    after = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert all(b > a for a, b in zip(before["actor_env_steps"], after["actor_env_steps"], strict=True))
    assert "lr: 0.002" in (run / "config.yaml").read_text()
    assert "learner.lr=0.002" in (run / "resumes.log").read_text()
    assert json.loads((run / "summary.json").read_text())["updates"] >= 60


@pytest.mark.parametrize(
    "content, overrides, message",
    [
        ("", [], "no stop criterion is set"),
        ("stop: {updates: 10}\nreplay: {capacity: 1000, rate_limiter: {min_size_to_sample: 800}}", [],
         "is more than a shard can hold"),
        ("stop: {updates: 10}\nlearner: {target_update: soft, tau: 0}", [], "never moves the target network"),
        ("stop: {updates: 10}\nrun: {seed: 1}\nrun: {seed: 2}", [], "key 'run' appears twice"),
    ],
)  # fmt: skip
def test_10_silent_misconfigurations_are_refused(tmp_path, content, overrides, message):
    config = tmp_path / "config.yaml"
    config.write_text(content)
    result = _cli("train", str(config), "--quiet", "--run-dir", str(tmp_path / "run"), *overrides)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_12_ctrl_c_while_ray_starts_exits_130_and_leaves_no_process(tmp_path):
    run = tmp_path / "run"
    proc = processes.train(run)
    try:
        processes.wait_for_descendant(proc.pid, "gcs_server", timeout=60)
        tree = processes.descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
        code = processes.finish(proc, timeout=60)
    finally:
        processes.finish(proc, timeout=1)
    assert code == 130, processes.log_of(run)
    assert "interrupted" in processes.log_of(run) and not run.exists()
    deadline = time.time() + 15
    while [pid for pid in tree if processes.alive(pid)]:
        assert time.time() < deadline, [processes.cmdline(p) for p in tree if processes.alive(p)]
        time.sleep(0.5)
