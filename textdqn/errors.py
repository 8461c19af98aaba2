"""textdqn's exception types. Every message says what is wrong and what to do about it."""


class TextDQNError(Exception):
    """Base class of every error textdqn raises on purpose."""


class ConfigError(TextDQNError, ValueError):
    """A config key is unknown, or a value has the wrong type or is out of range."""


class SchemaError(TextDQNError, ValueError):
    """A TransitionBatch does not match the schema the replay was allocated with."""


class CheckpointError(TextDQNError):
    """A checkpoint is missing, corrupted, or does not match the object restoring it."""


class RateLimitTimeout(TextDQNError, TimeoutError):
    """A blocking insert or sample waited longer than its timeout on the rate limiter."""


class ReplayError(TextDQNError):
    """The replay service cannot serve a request (empty, unreachable shard, ...)."""


class ShardUnavailable(ReplayError):
    """A replay shard's process is gone or restarting: the call may be retried elsewhere."""


class ReplayStorageError(ReplayError):
    """A replay shard's durable tier (Redis) is unreachable, refuses us, or holds keys that do
    not match the shard: the message names the (redacted) URL or key and the fix."""


class EnvError(TextDQNError):
    """An environment keeps failing: the message names the env and its last error."""


class LMImportError(TextDQNError, ValueError):
    """`textdqn lm import` cannot read its source or write its directory: the message names the
    path and what to do (install a package, pass another file, --force)."""
