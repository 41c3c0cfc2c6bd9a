"""The Redis client: created lazily once per container, with short timeouts so that an unreachable
Redis answers 503 within about a second instead of hanging the request."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from chalicelib.config import ConfigError, get_settings
from chalicelib.errors import ServiceUnavailable

_client: redis.Redis | None = None
_lock = threading.Lock()


def get_redis() -> redis.Redis:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                settings = get_settings()
                if not settings.redis_url:
                    raise ConfigError("REDIS_URL must be set")
                timeout = settings.redis_timeout_s
                _client = redis.Redis.from_url(
                    settings.redis_url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    # One quick retry covers a connection the server closed while idle;
                    # more would only delay the 503 when Redis is really gone.
                    retry=Retry(NoBackoff(), 1),
                    health_check_interval=30,
                    decode_responses=True,
                )
    return _client


def close_connections() -> None:
    """Close the pooled Redis connections, keeping the client (a snapshot must hold no socket)."""
    if _client is not None:
        _client.connection_pool.disconnect()


def reset_redis() -> None:
    global _client
    if _client is not None:
        _client.close()
    _client = None


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turn any Redis failure into 503: we fail closed, never answer unchecked."""
    try:
        yield
    except redis.RedisError as exc:
        raise ServiceUnavailable("The session store is unavailable; try again shortly") from exc


def script(source: str) -> Callable[..., Any]:
    """A Lua script run by its SHA (EVALSHA: one round trip, without sending the source each time)
    on the current client; after a Redis restart has forgotten it, EVAL runs and caches it again."""
    sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def run(*, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        client = get_redis()
        try:
            return client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(source, len(keys), *keys, *args)

    return run
