"""The command line: help, `replay inspect` on a real checkpoint and on a bad one, `domain check` and
`domain show` on shipped and broken domain files, `train --profile`, `bench train`'s bad options."""

import pytest
from typer.testing import CliRunner

from tests.conftest import make_batch
from textdqn.cli import app
from textdqn.envs.dialogue.acts import system_acts
from textdqn.envs.dialogue.domain import DOMAINS_DIR, load_domain, make_goals, make_kb
from textdqn.envs.dialogue.domain_report import goal_stats
from textdqn.replay_server import ReplayShard

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output and "replay" in result.output
    result = runner.invoke(app, ["bench", "replay", "--help"])
    assert result.exit_code == 0 and "--quick" in result.output and "--json" in result.output


def test_replay_inspect(tmp_path):
    shard = ReplayShard(capacity=8)
    shard.insert(make_batch(0, 11))
    shard.checkpoint(tmp_path)
    result = runner.invoke(app, ["replay", "inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "8 / 8" in result.output and "11" in result.output and "obs" in result.output


def test_replay_inspect_missing_dir_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["replay", "inspect", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "missing" in result.output


SHIPPED = sorted({"movies", "restaurants", *(str(p) for p in DOMAINS_DIR.glob("*.yaml"))})


@pytest.mark.parametrize("domain", SHIPPED)
def test_domain_check_accepts_the_shipped_domains(domain):
    result = runner.invoke(app, ["domain", "check", domain])
    assert result.exit_code == 0, result.output
    assert f"{domain}: ok (" in result.output and "system acts" in result.output


def test_domain_check_lists_every_problem_and_exits_2(tmp_path):
    text = (DOMAINS_DIR / "movies.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        text.replace("required: [moviename, numberofpeople]", "required: [moviname, numberofpeople]")
        .replace("theater: {by: city, per_group: 3}", "theater: {by: city, per_group: 30}")
        .replace("offer: [", "ofer: ["),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["domain", "check", str(broken)])
    assert result.exit_code == 2, result.output
    assert "has 4 problems" in result.output
    for text in [
        "goals.required: ['moviname'] are not informable slots — did you mean 'moviename'",
        "grouped.theater.per_group: 30 is out of range — give a whole number from 1 to 8",
        "templates.system: unknown keys ['ofer'] — did you mean 'offer'",
        "templates.system.offer: missing — the domain has no sentences for templates.system.offer",
    ]:
        assert text in result.output, text
    missing = runner.invoke(app, ["domain", "check", "no-such-domain"])
    assert missing.exit_code == 2 and "not found" in missing.output and "movies" in missing.output


def test_domain_show_prints_the_act_space_and_goal_statistics():
    domain = load_domain("movies")
    kb = make_kb(domain, 0)
    train, test = make_goals(domain, kb, 0)
    stats = goal_stats(kb, train + test)
    result = runner.invoke(app, ["domain", "show", "movies"])
    assert result.exit_code == 0, result.output
    n_acts = len(system_acts(domain))
    assert f"act space: {n_acts} system acts" in result.output
    assert f"{n_acts - 1} │ bye" in result.output  # numbered from 0
    assert "feasible share" in result.output and f"{stats.feasible_share:.1%}" in result.output
    assert "vector observation size" in result.output and "movies goal:" in result.output


def test_train_profile_writes_a_profile_of_every_component_in_serial_mode(tmp_path):
    import pstats

    profile = tmp_path / "train.prof"
    args = ["--serial", "--quiet", "--set", "stop.updates=20", "--set", "eval.every_env_steps=0"]
    args += ["--run-dir", str(tmp_path / "run"), "--profile", str(profile)]
    result = runner.invoke(app, ["train", "configs/cartpole.yaml", *args])
    assert result.exit_code == 0, result.output
    functions = {f"{file}:{name}" for file, _, name in pstats.Stats(str(profile)).stats}
    for part in ("learner.py:update", "worker.py:rollout", "serial.py:step"):
        assert any(f.endswith(part) for f in functions), part
    assert "cumulative" in result.output and f"wrote the profile to {profile}" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--impls", "serial,fast"], "--impls takes some of"),
        (["--seeds", "0,x"], "--seeds takes whole numbers >= 0"),
    ],
)
def test_bench_train_refuses_bad_options_before_running_anything(args, words):
    result = runner.invoke(app, ["bench", "train", "configs/cartpole.yaml", *args])
    assert result.exit_code == 2 and words in result.output
