"""How a replay shard reaches Redis: the shard's RedisSpec, URLs with their password hidden,
a client that has answered PING (every redis-py error turned into a ReplayStorageError that
names the redacted URL and the fix), and transactions written to the socket in one piece.

The password travels in RedisSpec.password (from the URL or the environment variable named by
replay.redis_password_env); it never appears in a repr, a message or a log line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from textdqn.errors import ReplayStorageError

if TYPE_CHECKING:
    from textdqn.config import ReplayConfig


REDACTED = "***"


def redact_url(url: str) -> str:
    """`url` with its password replaced by *** (for messages, logs and the run directory)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


@dataclasses.dataclass(frozen=True)
class RedisSpec:
    """Where one shard's durable tier lives: plain values, so Ray can ship it to the actor.

    url: redis://, rediss:// (TLS) or unix:// URL (may hold the password).
    run_id, index: the run and shard index, which name the keys.
    password: the password when it is not in the URL ("" for none); never shown in repr.
    password_env: the environment variable it came from, for error messages.
    flush_s: seconds between write-behind flushes of priority updates.
    """

    url: str
    run_id: str
    index: int
    password: str = dataclasses.field(default="", repr=False)
    password_env: str = ""
    flush_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.run_id or re.search(r"[{}\s]", self.run_id):
            raise ReplayStorageError(
                f"run id {self.run_id!r} cannot name Redis keys: it must be non-empty, without "
                "braces or spaces (it goes inside the {...} hash tag)"
            )
        if self.flush_s <= 0:
            raise ValueError(f"flush_s must be > 0 seconds, got {self.flush_s}")

    def __repr__(self) -> str:
        return (
            f"RedisSpec(url={redact_url(self.url)!r}, run_id={self.run_id!r}, index={self.index}, "
            f"flush_s={self.flush_s})"
        )

    @property
    def prefix(self) -> str:
        return f"textdqn:{{{self.run_id}:{self.index}}}:"


def redis_spec(config: ReplayConfig, run_id: str, index: int, url: str | None = None) -> RedisSpec | None:
    """Shard `index`'s RedisSpec for `config` (None with memory storage).

    `url` overrides replay.redis_url; it is required when that is "local" (pass the URL of
    the LocalRedisServer started for the run). The password comes from the URL, else from
    the environment variable named by replay.redis_password_env.
    """
    if config.storage != "redis":
        return None
    url = url or config.redis_url
    if url == "local":
        raise ReplayStorageError(
            "replay.redis_url is 'local': start a LocalRedisServer for the run and pass its .url "
            "to redis_spec(..., url=server.url)"
        )
    password, env = "", config.redis_password_env
    if urlsplit(url).password == REDACTED:  # a run directory's config.yaml never holds it
        url = url.replace(f":{REDACTED}@", "@", 1)
        if not env:
            raise ReplayStorageError(
                f"the password of replay.redis_url ({url}) is not kept in the run directory: give "
                "it again with --set replay.redis_url=redis://:PASSWORD@host:port/db, or keep it in "
                "an environment variable named by replay.redis_password_env"
            )
    if env and urlsplit(url).password is None:
        if env not in os.environ:
            raise ReplayStorageError(
                f"replay.redis_password_env names {env!r}, but that environment variable is not set: "
                f"export {env}=<password> before starting the run, or clear replay.redis_password_env"
            )
        password = os.environ[env]
    return RedisSpec(url, run_id, index, password, env, config.redis_flush_s)


def storage_error(
    error: Exception, url: str, password: str, password_env: str, doing: str
) -> ReplayStorageError:
    """A ReplayStorageError for a redis-py `error` met while `doing`, naming the redacted URL
    and the likely fix; the password never appears in it."""
    import redis

    detail = str(error)
    in_url = urlsplit(url).password
    for secret in (password, in_url, unquote(in_url or "")):
        if secret:
            detail = detail.replace(secret, "***")
    if isinstance(error, redis.AuthenticationError):
        where = f"the environment variable {password_env}" if password_env else "replay.redis_password_env"
        fix = f"set the password in {where} or in the URL (redis://:PASSWORD@host:port/db)"
    elif isinstance(error, redis.ConnectionError | redis.TimeoutError):
        fix = (
            "start redis-server there (or use replay.redis_url: local), check replay.redis_url; "
            "for rediss:// check the server's TLS port and certificate"
        )
    else:
        fix = "check the server's log and memory (maxmemory), then restart the shard"
    return ReplayStorageError(f"Redis at {redact_url(url)} failed while {doing}: {detail}; {fix}")


def connect(url: str, password: str = "", password_env: str = "") -> Any:
    """A redis.Redis client for `url` that has answered PING; ReplayStorageError if not.

    A password in the URL wins over `password`; `password_env` only names its source in errors.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        client = redis.Redis.from_url(
            url,
            password=password or None,
            socket_connect_timeout=5.0,
            socket_timeout=60.0,
            retry=Retry(NoBackoff(), 1),
        )
    except ValueError as e:
        raise ReplayStorageError(
            f"replay.redis_url {redact_url(url)!r} is not a Redis URL ({e}): "
            "expected redis://host:port/db, rediss://... or unix:///path.sock"
        ) from e
    try:
        client.ping()
    except redis.RedisError as e:
        client.close()
        raise storage_error(e, url, password, password_env, "answering PING") from e
    return client


def hset(key: str, mapping: dict[str, Any]) -> tuple:
    """The HSET command setting `mapping` in hash `key`, for `send_transaction`."""
    return ("HSET", key, *(x for item in mapping.items() for x in item))


def pack(commands: list[tuple]) -> bytes:
    """`commands` in the Redis protocol (RESP), as one buffer; arguments are str, int or bytes-like."""
    parts = []
    for args in commands:
        parts.append(b"*%d\r\n" % len(args))
        for arg in args:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = b"%d" % arg
            parts += (b"$%d\r\n" % memoryview(arg).nbytes, arg, b"\r\n")
    return b"".join(parts)


def send_transaction(client: Any, commands: list[tuple]) -> Callable[[], list[Any]]:
    """Write MULTI, `commands`, EXEC to a connection of `client` at once; returns `receive`,
    which reads the replies and returns the EXEC's, so the caller can work while Redis executes.

    redis-py's transaction pipeline sends a command's pieces with one system call each; one
    buffer packed here is written at once, which makes an insert about twice as fast. The
    commands must be idempotent (SETRANGE, HSET): a dropped connection is retried once.
    """
    import redis

    pool = client.connection_pool
    payload = pack([("MULTI",), *commands, ("EXEC",)])

    def attempt() -> Callable[[], list[Any]]:
        conn = pool.get_connection()
        try:
            conn.send_packed_command([payload])
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise

        def receive() -> list[Any]:
            try:
                for _ in range(len(commands) + 1):
                    conn.read_response()  # +OK, then +QUEUED; a refused command raises here
                replies = conn.read_response()
            except BaseException:
                conn.disconnect()  # unread replies may be left on it
                raise
            finally:
                pool.release(conn)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies

        return receive

    dropped = (redis.ConnectionError, redis.TimeoutError)
    try:
        receive = attempt()
    except dropped:
        return attempt()  # the retry

    def receive_or_retry() -> list[Any]:
        try:
            return receive()
        except dropped:
            return attempt()()

    return receive_or_retry
