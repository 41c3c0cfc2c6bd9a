"""The Redis client (chalicelib/cache.py): a new connection costs no round trip of its own (RESP2
needs no HELLO; no CLIENT SETINFO), and a script started with `start()` is read later, falling back
to an ordinary run when its connection had gone stale."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from chalicelib import cache
from devtools.relay import Relay


@pytest.fixture
def relayed_redis(reconfigure):
    url = os.environ["REDIS_URL"]
    if url.startswith("unix://"):
        relay = Relay(upstream_unix=urlsplit(url).path)
    else:
        parts = urlsplit(url)
        relay = Relay(upstream=(parts.hostname or "127.0.0.1", parts.port or 6379))
    relay.start()
    reconfigure(REDIS_URL=f"redis://127.0.0.1:{relay.port}/0")  # database 0: no SELECT either
    yield relay
    cache.reset_redis()
    relay.stop()


def test_a_new_connection_costs_only_the_command_it_carries(relayed_redis):
    with relayed_redis.counting() as counted:
        cache.get_redis().get("absent")
    assert counted == {"round_trips": 1, "connections": 1}


def test_a_started_script_is_answered_when_read(relayed_redis):
    echo = cache.Lua("return {KEYS[1], ARGV[1]}")
    pending = echo.start(keys=["k"], args=["v"])
    assert pending.result() == ["k", "v"]  # the first time loaded: Redis did not know it yet
    assert echo.start(keys=["a"], args=["b"]).result() == ["a", "b"]


def test_a_started_script_on_a_stale_connection_runs_again(relayed_redis):
    echo = cache.Lua("return ARGV[1]")
    assert echo(keys=[], args=["warm"]) == "warm"
    pool = cache.get_redis().connection_pool
    for connection in pool._available_connections:  # redis-py's pool (pinned): the server "restarts"
        connection._sock.close()
    assert echo.start(keys=[], args=["again"]).result() == "again"
