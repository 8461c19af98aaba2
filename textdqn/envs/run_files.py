"""Run directories that carry the files their env reads: a user's dialogue domain file, a
text-generation prompts file.

An env class names the keyword arguments that are such files in `run_files` (DialogueEnv:
"domain"; TextGenEnv: "prompts"). When a run starts, each one that is a path to a file is
copied into the run directory's files/ folder and config.yaml names the copy relative to
the run directory ("files/hotels.yaml"), so the directory can move, and `textdqn eval
RUN_DIR` works from any directory; reading the run back resolves that to the copy's
absolute path. Shipped names ("movies") and empty values are left as they are. Model
checkpoints (env.kwargs.lm.path) are not copied: they are large, and loaded from where the
user keeps them.
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from pathlib import Path

import gymnasium as gym

from textdqn.config import Config

FILES_DIR = "files"


def run_file_kwargs(env_id: str) -> tuple[str, ...]:
    """The keyword arguments of `env_id`'s class that name files a run should carry."""
    if env_id not in gym.registry:
        return ()
    entry = gym.registry[env_id].entry_point
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)
    return tuple(getattr(entry, "run_files", ()))


def copy_run_files(config: Config, run_dir: Path, write: bool = True) -> Config:
    """`config` as config.yaml keeps it: each run file copied into run_dir/files/ (unless it
    is already there) and named relative to `run_dir`. `write=False` names the copies without
    making them (a file that differs from the run's copy gets a new name)."""
    run_dir = Path(run_dir).resolve()

    def keep(value: str) -> str:
        path = Path(value).resolve()
        if path.is_relative_to(run_dir):
            return path.relative_to(run_dir).as_posix()
        target = _free_name(run_dir / FILES_DIR, path)
        if write and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return target.relative_to(run_dir).as_posix()

    return _map_files(config, keep, lambda value: Path(value).is_file())


def resolve_run_files(config: Config, run_dir: Path) -> Config:
    """`config` with each run file that config.yaml names relative to `run_dir` as the absolute
    path of that copy (the config a run directory's processes read)."""
    run_dir = Path(run_dir).resolve()

    def local(value: str) -> bool:
        return not Path(value).is_absolute() and (run_dir / value).is_file()

    return _map_files(config, lambda value: str(run_dir / value), local)


def _free_name(folder: Path, source: Path) -> Path:
    """folder/<source's name>, or folder/<stem>-<n><suffix> when a different file holds it."""
    target, n = folder / source.name, 1
    while target.exists() and target.read_bytes() != source.read_bytes():
        target, n = folder / f"{source.stem}-{n}{source.suffix}", n + 1
    return target


def _map_files(config: Config, change, applies) -> Config:
    names = run_file_kwargs(config.env.id)
    if not names:
        return config

    def mapped(kwargs: dict) -> dict:
        return {
            k: change(v) if k in names and isinstance(v, str) and v and applies(v) else v
            for k, v in kwargs.items()
        }

    env = dataclasses.replace(config.env, kwargs=mapped(config.env.kwargs))
    evaluation = dataclasses.replace(config.eval, env_kwargs=mapped(config.eval.env_kwargs))
    return dataclasses.replace(config, env=env, eval=evaluation)
