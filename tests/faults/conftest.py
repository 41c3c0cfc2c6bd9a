"""Fixtures that put a failure we control between the app and its backing services.

`own_redis` gives the app a private redis-server (killed and restarted by the test); `pg_proxy` puts
a TCP proxy between the app and the test database, so the test can make PostgreSQL unreachable
without stopping the server everybody else uses.
"""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy.engine import make_url

from chalicelib import cache, config, db
from chalicelib.config import normalise_database_url
from tests.factories import make_site, make_user
from tests.faults.servers import RedisProcess, TcpProxy

# Every fault must be answered well within this (API.md: 503 fast, never a hang).
FAST_SECONDS = 2.0
CREDENTIALS = {"username": "jdoe", "password": "correct horse battery staple"}


@pytest.fixture
def user():
    """jdoe, an editor of Marketing (the site's id)."""
    site = make_site("Marketing")
    make_user("jdoe", sites={site: "editor"})
    return site


def timed(call):
    """(response, seconds) of one request."""
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def assert_unavailable(response, elapsed):
    """A 503 envelope with CORS headers and a request id, answered fast."""
    assert response.status_code == 503, response.json_body
    assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Access-Control-Allow-Origin"]
    assert response.headers["X-Request-Id"]
    assert elapsed < FAST_SECONDS, f"took {elapsed:.2f}s"


def _reset_clients() -> None:
    config.reset_settings()
    cache.reset_redis()
    db.reset_engine()


@pytest.fixture
def own_redis(tmp_path, monkeypatch):
    server = RedisProcess(tmp_path / "redis").start()
    monkeypatch.setenv("REDIS_URL", server.url)
    _reset_clients()
    yield server
    server.stop()
    _reset_clients()


@pytest.fixture
def redis_proxy(own_redis, monkeypatch):
    """A proxy in front of `own_redis`; REDIS_URL points at the proxy."""
    proxy = TcpProxy(("127.0.0.1", own_redis.port)).open()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{proxy.port}/0")
    _reset_clients()
    yield proxy
    proxy.close()
    _reset_clients()


def _database_target(url: str) -> str | tuple[str, int]:
    parsed = make_url(normalise_database_url(url))
    sock = parsed.query.get("unix_sock")
    if sock:
        return sock if isinstance(sock, str) else sock[0]
    return (parsed.host or "127.0.0.1", parsed.port or 5432)


@pytest.fixture
def pg_proxy(monkeypatch):
    """A proxy in front of the test database; DATABASE_URL points at the proxy."""
    original = os.environ["DATABASE_URL"]
    proxy = TcpProxy(_database_target(original)).open()
    url = make_url(normalise_database_url(original))
    proxied = url.set(host="127.0.0.1", port=proxy.port, query={})
    monkeypatch.setenv("DATABASE_URL", proxied.render_as_string(hide_password=False))
    _reset_clients()
    yield proxy
    proxy.close()
    _reset_clients()
