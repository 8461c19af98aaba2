"""LocalRedisServer: a private, password-protected redis-server whose data outlives it."""

import os
import shutil
import signal

import pytest

from tests.conftest import make_batch
from textdqn.errors import ReplayStorageError
from textdqn.replay_server import ReplayShard
from textdqn.replay_server.redis_server import LocalRedisServer
from textdqn.replay_server.redis_tier import RedisSpec, redact_url

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not on PATH (apt-get install redis-server)"
)


def client(url: str):
    import redis

    return redis.Redis.from_url(url)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_redis
def test_it_answers_with_its_password_only_and_stops(tmp_path):
    import redis

    with LocalRedisServer(tmp_path / "data") as server:
        assert client(server.url).ping()
        password = server.url.split("@")[0].split(":")[-1]
        assert len(password) >= 24 and password not in repr(server)
        assert server.url.startswith("redis://:") and "@127.0.0.1:" in server.url
        with pytest.raises(redis.AuthenticationError):
            client(server.url.replace(password, "")).ping()
        pid = server.pid
        assert alive(pid)
        assert password not in (tmp_path / "data" / "redis-server.log").read_text()
    server._proc.wait(5)  # stop() waited for it already; this only reaps the status
    assert server._proc.returncode == 0
    server.stop()  # a second stop is harmless


@needs_redis
def test_a_restart_on_the_same_data_dir_keeps_the_data(tmp_path):
    with LocalRedisServer(tmp_path) as first:
        spec = RedisSpec(first.url, "run", 0)
        shard = ReplayShard(10, durable=spec)
        shard.insert(make_batch(0, 13))
        shard.close()
        client(first.url).set("plain", b"kept")
    with LocalRedisServer(tmp_path) as second:  # a new port and password, the same AOF
        assert second.url != first.url
        assert client(second.url).get("plain") == b"kept"
        reloaded = ReplayShard(10, durable=RedisSpec(second.url, "run", 0))
        assert reloaded.info().restored_items == 10 and reloaded.info().inserts == 13
        assert reloaded.sample(50).batch.obs[:, 0].min() >= 3  # the newest 10 of 13
        reloaded.close()


@needs_redis
def test_a_killed_server_can_still_be_stopped(tmp_path):
    server = LocalRedisServer(tmp_path)
    os.kill(server.pid, signal.SIGKILL)
    server.stop()  # no SHUTDOWN to send: it only reaps the process, without raising
    assert server._proc.poll() == -signal.SIGKILL and not alive(server.pid)


@needs_redis
def test_a_server_that_fails_to_start_shows_the_end_of_its_log(tmp_path):
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    with pytest.raises(ReplayStorageError) as info:
        LocalRedisServer(tmp_path, start_timeout_s=10)
    message = str(info.value)
    assert "redis-server exited with code" in message and "redis-server.log" in message
    assert "manifest" in message.lower()  # the server's own complaint, from its log


def test_without_redis_server_on_path_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ReplayStorageError, match=r"apt-get install redis-server\) or set replay\.redis_url"):
        LocalRedisServer(tmp_path)


@needs_redis
def test_its_url_redacts(tmp_path):
    with LocalRedisServer(tmp_path) as server:
        assert redact_url(server.url) == f"redis://:***@127.0.0.1:{server.port}/0"


@needs_redis
def test_a_server_left_running_by_a_dead_process_is_stopped_before_a_new_one_starts(tmp_path):
    """A driver killed with SIGKILL must not leave two servers appending to one file: the
    child dies with its parent (PR_SET_PDEATHSIG), and a leftover named in the pid file is
    stopped by the next start."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from textdqn.replay_server.redis_server import LocalRedisServer

    code = (
        "import sys, time; from textdqn.replay_server.redis_server import LocalRedisServer;"
        f"s = LocalRedisServer({str(tmp_path)!r}); print(s.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while Path(f"/proc/{child}").exists() and b"redis" in Path(f"/proc/{child}/cmdline").read_bytes():
        assert time.time() < deadline, "the private redis-server outlived the process that started it"
        time.sleep(0.05)
    # A leftover named in the pid file (as if the parent-death signal had not reached it) is stopped.
    leftover = subprocess.Popen(["redis-server", "--port", "0", "--save", ""], stdout=subprocess.DEVNULL)
    (tmp_path / "redis-server.pid").write_text(str(leftover.pid))
    with LocalRedisServer(tmp_path) as server:
        assert leftover.wait(timeout=10) is not None and server.pid != leftover.pid
