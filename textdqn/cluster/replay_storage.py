"""Where a run's replay lives, decided and checked by the driver before anything starts.

Memory storage needs nothing. Redis storage (`replay.storage: redis`) is checked before the
run directory is made or Ray starts: the server answers, the password is right, and a new
run finds no keys of its run id (a resumed run reloads them). `replay.redis_url: local`
starts a private redis-server for the run, its append-only file in <run dir>/redis, and
stops it at the end; a resumed run starts it again on the same file.

Call order: `check_storage(config, run_id, resume)` before the run directory; then
`with ReplayStorage(config, run_path, run_id) as storage:` and hand `storage.shard_options`
to the runner (shard_arguments' run_id and redis_url).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from textdqn.config import Config
from textdqn.errors import ReplayStorageError


def run_id_of(run_path: str | Path) -> str:
    """The run id that names a run's Redis keys: its directory's name, without {}, spaces."""
    return re.sub(r"[{}\s]", "_", Path(run_path).resolve().name) or "run"


def check_storage(config: Config, run_id: str, resume: bool) -> None:
    """ReplayStorageError, before any work starts, if the run's Redis cannot serve it."""
    replay = config.replay
    if replay.storage != "redis":
        return
    if replay.redis_url == "local":
        if shutil.which("redis-server") is None:
            raise ReplayStorageError(
                "replay.redis_url is 'local' but redis-server is not on PATH: install it "
                "(apt-get install redis-server) or set replay.redis_url to a running server"
            )
        return
    from textdqn.replay_server.redis_connection import connect, redact_url, redis_spec

    spec = redis_spec(replay, run_id, 0)
    client = connect(spec.url, spec.password, spec.password_env)
    try:
        pattern = "textdqn:{" + re.sub(r"([*?\[\]\\])", r"\\\1", run_id) + ":*"
        found = next(iter(client.scan_iter(match=pattern, count=1000)), None)
    finally:
        client.close()
    if found is not None and not resume:
        key = found.decode() if isinstance(found, bytes) else str(found)
        raise ReplayStorageError(
            f"Redis at {redact_url(spec.url)} already holds replay keys of run {run_id!r} "
            f"(e.g. {key}): pass --resume with that run's directory to continue it, choose "
            f"another --run-dir, or delete them: redis-cli --scan --pattern '{pattern}' | "
            "xargs redis-cli del"
        )


class ReplayStorage:
    """The run's replay storage for as long as the run lasts (a context manager).

    shard_options: keyword arguments of shard_arguments (run_id, redis_url), {} for memory.
    """

    def __init__(self, config: Config, run_path: str | Path, run_id: str) -> None:
        self.config = config
        self.run_path = Path(run_path)
        self.run_id = run_id
        self.server: Any = None
        self.shard_options: dict[str, Any] = {}

    def __enter__(self) -> ReplayStorage:
        replay = self.config.replay
        if replay.storage != "redis":
            return self
        url = replay.redis_url
        if url == "local":
            from textdqn.replay_server.redis_server import LocalRedisServer

            self.server = LocalRedisServer(self.run_path / "redis")
            url = self.server.url
        self.shard_options = {"run_id": self.run_id, "redis_url": url}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()
