"""Redis is the session store: when it is gone, authenticated requests and logins fail closed with
a quick 503, and they work again as soon as it is back, without restarting the app."""

from __future__ import annotations

import pytest

from tests.factories import auth, login, post_json
from tests.faults.conftest import CREDENTIALS, assert_unavailable, timed

pytestmark = pytest.mark.faults


def test_authenticated_requests_get_503_fast_while_redis_is_down(client, own_redis, user):
    token = login(client)["token"]
    own_redis.stop()

    response, elapsed = timed(lambda: client.http.get("/api/auth/me", headers=auth(token)))

    assert_unavailable(response, elapsed)


def test_login_gets_503_fast_while_redis_is_down(client, own_redis, user):
    own_redis.stop()

    response, elapsed = timed(lambda: post_json(client, "/api/auth/login", CREDENTIALS))

    assert_unavailable(response, elapsed)


def test_logout_gets_503_fast_while_redis_is_down(client, own_redis, user):
    token = login(client)["token"]
    own_redis.stop()

    response, elapsed = timed(lambda: post_json(client, "/api/auth/logout", {}, token))

    assert_unavailable(response, elapsed)


def test_health_names_the_cache_when_redis_is_down(client, own_redis):
    own_redis.stop()

    response, elapsed = timed(lambda: client.http.get("/api/health"))

    assert_unavailable(response, elapsed)
    assert response.json_body["error"]["details"] == [{"field": "cache", "message": "unavailable"}]


def test_requests_succeed_again_when_redis_returns_without_restarting_the_app(client, own_redis, user):
    token = login(client)["token"]
    own_redis.stop()
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 503
    assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 503

    own_redis.start()  # same port, empty data: sessions are not revoked, counters start again

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200
    assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 200
    assert client.http.get("/api/health").status_code == 200


def test_a_redis_that_accepts_but_never_answers_gives_503_within_the_timeout(client, redis_proxy, user):
    token = login(client)["token"]
    redis_proxy.mode = "blackhole"
    redis_proxy.cut()  # the pooled connection goes; new ones hang

    response, elapsed = timed(lambda: client.http.get("/api/auth/me", headers=auth(token)))
    assert_unavailable(response, elapsed)

    response, elapsed = timed(lambda: post_json(client, "/api/auth/login", CREDENTIALS))
    assert_unavailable(response, elapsed)

    redis_proxy.mode = "forward"
    redis_proxy.cut()
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


def test_login_while_redis_is_down_writes_nothing(client, own_redis, user, session):
    from sqlalchemy import select

    from chalicelib.models import User

    own_redis.stop()
    assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 503

    assert session.scalar(select(User.last_login).where(User.username == "jdoe")) is None
