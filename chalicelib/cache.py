"""The Redis client: created lazily once per container, with short timeouts so that an unreachable
Redis answers 503 within about a second instead of hanging the request."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
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
