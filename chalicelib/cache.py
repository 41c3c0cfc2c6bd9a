"""The Redis client: created lazily once per container, with short timeouts so that an unreachable
Redis answers 503 within about a second instead of hanging the request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script as RedisScript
from redis.exceptions import NoScriptError
from redis.retry import Retry

from chalicelib.config import ConfigError, get_settings
from chalicelib.errors import ServiceUnavailable

_client: redis.Redis | None = None
HEALTH_CHECK_SECONDS = 30  # a connection idle this long is pinged before its next command


def _connected(connection: Any) -> None:
    """After connecting: the usual handshake, and no health-check ping until the connection has
    been idle — redis-py would otherwise ping a brand-new connection before its first command."""
    connection.on_connect()
    connection.next_health_check = time.monotonic() + HEALTH_CHECK_SECONDS


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
                    health_check_interval=HEALTH_CHECK_SECONDS,
                    redis_connect_func=_connected,
                    decode_responses=True,
                    # A new connection costs one round trip fewer each: RESP2 needs no HELLO, and
                    # no CLIENT SETINFO is sent (redis-py sends both by default).
                    protocol=2,
                    driver_info=None,
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


class Lua:
    """A Lua script, its source standalone, registered with redis-py (`register_script`) on the
    current client: a call runs it by its SHA (EVALSHA: one round trip, without sending the source
    each time); after a Redis restart has forgotten it, redis-py loads it again.

    `script(keys=…, args=…)` runs it and returns its answer. `script.start(keys=…, args=…)` only
    sends it and returns a `Pending` whose `result()` reads the answer later: meanwhile the request
    can wait on PostgreSQL, so the two round trips overlap instead of adding up."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._registered: RedisScript | None = None

    def registered(self) -> RedisScript:
        """The script registered on the current client (again after the client is replaced)."""
        client = get_redis()
        found = self._registered
        if found is None or found.registered_client is not client:
            found = self._registered = client.register_script(self.source)
        return found

    def __call__(self, *, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        return self.registered()(keys=keys, args=args)

    def start(self, *, keys: Sequence[Any], args: Sequence[Any] = ()) -> Pending:
        return Pending(self, list(keys), list(args))


class Pending:
    """A script sent on a connection of its own from the pool, its answer not read yet. Any
    failure of the overlapped path (a connection gone stale, a forgotten script) falls back to the
    ordinary run, with its retry; errors surface from `result()`."""

    def __init__(self, script: Lua, keys: list[Any], args: list[Any]) -> None:
        self.script, self.keys, self.args = script, keys, args
        registered = script.registered()
        self.pool = get_redis().connection_pool
        self.connection: Any = None
        self.failure: redis.RedisError | None = None
        try:
            self.connection = self.pool.get_connection()
            self.connection.send_command("EVALSHA", registered.sha, len(keys), *keys, *args)
        except redis.TimeoutError as exc:  # Redis does not answer: no second wait
            self.failure = exc
            self._release()
        except redis.RedisError:  # a connection gone stale: the ordinary run (and its retry)
            self._release()

    def _release(self) -> None:
        if self.connection is not None:
            self.pool.release(self.connection)
            self.connection = None

    def result(self) -> Any:
        if self.failure is not None:
            raise self.failure
        if self.connection is None:
            return self.script(keys=self.keys, args=self.args)
        try:
            return self.connection.read_response()
        except (NoScriptError, redis.ConnectionError):
            self._release()
            return self.script(keys=self.keys, args=self.args)
        finally:
            self._release()
