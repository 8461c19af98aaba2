"""The command line: help, and `replay inspect` on a real checkpoint and on a bad one."""

from typer.testing import CliRunner

from tests.conftest import make_batch
from textdqn.cli import app
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
