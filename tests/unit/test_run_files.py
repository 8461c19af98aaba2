"""Run directories carry the env's user files (a domain file): config.yaml names the copy."""

import shutil

import pytest
import yaml

from textdqn.cli import _train_config
from textdqn.config import load_config
from textdqn.envs import make_env
from textdqn.envs.dialogue.domain import DOMAINS_DIR
from textdqn.envs.run_files import copy_run_files, resolve_run_files, run_file_kwargs
from textdqn.errors import ConfigError
from textdqn.metrics import RunDirectory


def _config(tmp_path, domain):
    path = tmp_path / "dialogue.yaml"
    data = yaml.safe_load(open("configs/dialogue.yaml"))
    data["env"]["kwargs"]["domain"] = str(domain)
    data["eval"]["env_kwargs"]["domain"] = str(domain)
    path.write_text(yaml.safe_dump(data))
    return path


def test_envs_name_their_run_files():
    assert run_file_kwargs("textdqn/Dialogue-v0") == ("domain",)
    assert run_file_kwargs("textdqn/TextGen-v0") == ("prompts",)
    assert run_file_kwargs("CartPole-v1") == () and run_file_kwargs("No-such-v0") == ()


def test_a_run_keeps_a_copy_of_its_domain_file_and_reads_it_from_anywhere(tmp_path, monkeypatch):
    user = tmp_path / "mine" / "hotels.yaml"
    user.parent.mkdir()
    shutil.copy(DOMAINS_DIR / "restaurants.yaml", user)
    config = load_config(_config(tmp_path, user))
    run = RunDirectory.create(config, run_dir=str(tmp_path / "run"))
    saved = yaml.safe_load(run.config_path.read_text())
    assert saved["env"]["kwargs"]["domain"] == "files/hotels.yaml"  # relative: the directory can move
    assert saved["eval"]["env_kwargs"]["domain"] == "files/hotels.yaml"
    assert (run.path / "files" / "hotels.yaml").read_bytes() == user.read_bytes()
    training = run.with_own_files(config)
    assert training.env.kwargs["domain"] == str((run.path / "files" / "hotels.yaml").resolve())

    user.unlink()  # the user's file is gone, the run directory moved, and eval runs elsewhere
    moved = shutil.move(str(run.path), str(tmp_path / "moved"))
    monkeypatch.chdir(tmp_path / "mine")
    loaded = RunDirectory.open(moved).load_config()
    assert loaded.env.kwargs["domain"] == str((tmp_path / "moved" / "files" / "hotels.yaml").resolve())
    assert make_env(loaded.env).unwrapped.domain.name == "restaurants"


def test_shipped_names_stay_names_and_same_named_files_do_not_collide(tmp_path):
    config = load_config("configs/dialogue.yaml")
    assert copy_run_files(config, tmp_path) == config  # "movies" is not a file
    a, b = tmp_path / "a" / "d.yaml", tmp_path / "b" / "d.yaml"
    for path, source in ((a, "movies"), (b, "restaurants")):
        path.parent.mkdir()
        shutil.copy(DOMAINS_DIR / f"{source}.yaml", path)
    run_dir = tmp_path / "run"
    first = copy_run_files(load_config(_config(tmp_path, a)), run_dir)
    second = copy_run_files(load_config(_config(tmp_path, b)), run_dir)
    assert first.env.kwargs["domain"] == "files/d.yaml" and second.env.kwargs["domain"] == "files/d-1.yaml"
    again = resolve_run_files(second, run_dir)
    assert copy_run_files(again, run_dir).env.kwargs["domain"] == "files/d-1.yaml"  # already there: kept


def test_resume_with_the_config_compares_the_run_files_contents(tmp_path):
    user = tmp_path / "d.yaml"
    shutil.copy(DOMAINS_DIR / "restaurants.yaml", user)
    config_path = _config(tmp_path, user)
    run = RunDirectory.create(load_config(config_path), run_dir=str(tmp_path / "run"))
    resumed = _train_config(config_path, str(run.path), [])
    assert resumed.env.kwargs["domain"] == str((run.path / "files" / "d.yaml").resolve())
    user.write_text(user.read_text().replace("kb_size: ", "kb_size: 1"))  # the user's file changed since
    with pytest.raises(ConfigError, match=r"env\.kwargs\.domain"):
        _train_config(config_path, str(run.path), [])
    assert sorted(p.name for p in (run.path / "files").iterdir()) == ["d.yaml"]  # nothing written


def test_a_text_generation_run_keeps_its_prompts_file(tmp_path):
    prompts = tmp_path / "my_prompts.jsonl"
    prompts.write_text('{"id": "a", "concepts": ["dog"], "split": "train", "prompt": "dog"}\n')
    config = load_config("configs/textgen.yaml", [f"env.kwargs.prompts={prompts}"])
    kept = copy_run_files(config, tmp_path / "run")
    assert kept.env.kwargs["prompts"] == "files/my_prompts.jsonl"
    assert (tmp_path / "run" / "files" / "my_prompts.jsonl").read_bytes() == prompts.read_bytes()
    shipped = load_config("configs/textgen.yaml")  # the shipped prompts: nothing to copy
    assert copy_run_files(shipped, tmp_path / "run2") == shipped and not (tmp_path / "run2").exists()
