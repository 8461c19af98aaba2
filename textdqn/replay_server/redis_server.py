"""A private redis-server for one run (`replay.redis_url: local`), and for tests and benchmarks.

The server binds to 127.0.0.1 on a free port, requires a random password, and keeps its data
as an append-only file (fsync every second, no RDB snapshots) in `data_dir`, so a server
started again on the same directory reloads what the shards wrote. Its configuration,
password included, goes to redis-server on stdin: it is never on a command line (visible in
`ps`) nor in a file.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import subprocess
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from textdqn.errors import ReplayStorageError

log = logging.getLogger(__name__)

LOG_FILE = "redis-server.log"
PID_FILE = "redis-server.pid"


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when the process that started it dies,
    so a killed driver does not leave its private server running (redis-server flushes its
    append-only file on SIGTERM)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc: the pid file below still stops a leftover server
        pass


def _stop_leftover(data_dir: Path) -> None:
    """Stop a redis-server an earlier process started on `data_dir` and left running: two
    servers must never append to one file."""
    import os
    import signal

    pid_path = data_dir / PID_FILE
    try:
        pid = int(pid_path.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"redis-server" not in command:
        return
    log.warning("stopping redis-server pid %d left running on %s by an earlier run", pid, data_dir)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether process `pid` still runs: a zombie (exited, not yet reaped by its parent, which
    in a container without an init may be never) writes nothing more and counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state follows the (command) field


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quote(text: str) -> str:
    """A redis.conf string argument."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    """Terminate, then kill, `proc` if it still runs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalRedisServer:
    """A redis-server child process with its data in `data_dir`.

    Args:
        data_dir: where the append-only file and the server's log live (created if missing).
        start_timeout_s: how long to wait for the server to answer PING (loading a large
            append-only file takes a while).

    Use as a context manager, or call `stop()`. `url` holds the password: hand it to
    redis_spec(..., url=server.url), never print it (redact_url).
    """

    def __init__(self, data_dir: str | Path, start_timeout_s: float = 60.0) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise ReplayStorageError(
                "replay.redis_url is 'local' but redis-server is not on PATH: install it "
                "(apt-get install redis-server) or set replay.redis_url to a running server"
            )
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _stop_leftover(self.data_dir)
        self._password = secrets.token_urlsafe(24)
        self._proc: subprocess.Popen | None = None
        for attempt in range(3):
            self.port = _free_port()
            if self._start(executable, start_timeout_s, last_try=attempt == 2):
                break
        self._finalizer = weakref.finalize(self, _stop_process, self._proc, 5.0)

    @property
    def url(self) -> str:
        """redis://:<password>@127.0.0.1:<port>/0 (secret: redact before showing it)."""
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __repr__(self) -> str:
        return f"LocalRedisServer(port={self.port}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

    def _config(self) -> str:
        return "\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            f"requirepass {self._password}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"dir {_quote(str(self.data_dir))}",
            "daemonize no",
            "protected-mode yes",
            "",
        ])  # fmt: skip

    def _start(self, executable: str, timeout_s: float, last_try: bool) -> bool:
        """Start the server and wait for PING; False if its port was taken meanwhile (retry)."""
        log_path = self.data_dir / LOG_FILE
        with log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                [executable, "-"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._proc.stdin.write(self._config().encode())
        self._proc.stdin.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                if "Address already in use" in tail and not last_try:
                    return False
                raise ReplayStorageError(
                    f"redis-server exited with code {self._proc.returncode} on start-up "
                    f"(data dir {self.data_dir}); the end of {log_path}:\n{tail}"
                )
            if self._answers_ping():
                log.info("started redis-server pid %d on 127.0.0.1:%d", self.pid, self.port)
                (self.data_dir / PID_FILE).write_text(str(self.pid))
                return True
            time.sleep(0.02)
        _stop_process(self._proc, 5.0)
        raise ReplayStorageError(
            f"redis-server did not answer PING within {timeout_s:.0f}s (data dir {self.data_dir}); "
            f"the end of {log_path}:\n{self._log_tail()}"
        )

    def _client(self, **options: float) -> Any:
        """A client without retries: a server that is down should say so at once."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self._password, retry=Retry(NoBackoff(), 0), **options
        )

    def _answers_ping(self) -> bool:
        import redis

        client = self._client(socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False  # not listening yet, or still loading its append-only file
        finally:
            client.close()

    def _log_tail(self, lines: int = 20) -> str:
        path = self.data_dir / LOG_FILE
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:]).replace(self._password, "***")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN (the append-only file is fsynced), then terminate or kill if it hangs."""
        import redis

        if self._proc is None or self._proc.poll() is not None:
            return
        client = self._client(socket_timeout=timeout_s)
        try:
            client.shutdown()
        except redis.RedisError as e:  # e.g. it was killed meanwhile: fall back to signals
            log.warning("redis-server pid %d: SHUTDOWN failed (%s); terminating it", self.pid, e)
        finally:
            client.close()
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _stop_process(self._proc, 5.0)

    def __enter__(self) -> LocalRedisServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
