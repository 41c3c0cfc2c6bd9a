"""Rate limits: more than LOGIN_RATE_PER_MINUTE login attempts a minute from one client IP
(API Gateway's sourceIp, never X-Forwarded-For), and more than API_RATE_PER_MINUTE authenticated
requests a minute by one user, get 429 RATE_LIMITED with Retry-After.

The login tests drive the Lambda handler with API Gateway events, because the test client always
reports 127.0.0.1. The clock is frozen inside one window so a minute boundary cannot split a test.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from chalicelib.auth import guard, limits, tokens
from chalicelib.config import get_settings
from chalicelib.errors import RateLimited
from tests.factories import PASSWORD, auth, login, make_site, make_user
from tests.support import call_app, json_request

LOGIN = "/api/auth/login"


@pytest.fixture(autouse=True)
def frozen_window(monkeypatch):
    """Mid-minute, so the whole test falls in one fixed window."""
    now = (int(time.time()) // 60) * 60 + 30
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now))


def _attempt(app, ip, body=None, **headers):
    request = json_request(body if body is not None else {"username": "jdoe"})  # 400: no password
    request["headers"].update(headers)
    return call_app(app, "POST", LOGIN, source_ip=ip, **request)


def _assert_rate_limited(response):
    assert response.status_code == 429, response.json_body
    assert response.json_body["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["X-Request-Id"]


def test_the_21st_login_attempt_a_minute_from_one_ip_is_refused(app_module):
    make_user()
    for _ in range(20):
        assert _attempt(app_module.app, "198.51.100.1").status_code == 400

    refused = _attempt(app_module.app, "198.51.100.1", {"username": "jdoe", "password": PASSWORD})

    _assert_rate_limited(refused)


def test_another_ip_is_not_affected(app_module):
    make_user()
    for _ in range(21):
        _attempt(app_module.app, "198.51.100.1")

    answer = _attempt(app_module.app, "198.51.100.2", {"username": "jdoe", "password": PASSWORD})

    assert answer.status_code == 200, answer.json_body


def test_x_forwarded_for_is_never_trusted(app_module):
    for _ in range(20):
        _attempt(app_module.app, "198.51.100.1")

    for spoofed in ("198.51.100.99", "198.51.100.99, 10.0.0.1"):
        _assert_rate_limited(_attempt(app_module.app, "198.51.100.1", **{"X-Forwarded-For": spoofed}))
    # and a header naming the limited IP does not hurt another client either
    assert _attempt(app_module.app, "198.51.100.3", **{"X-Forwarded-For": "198.51.100.1"}).status_code == 400


def test_the_login_rate_is_configurable(app_module, reconfigure):
    reconfigure(LOGIN_RATE_PER_MINUTE="3")
    for _ in range(3):
        assert _attempt(app_module.app, "198.51.100.1").status_code == 400

    _assert_rate_limited(_attempt(app_module.app, "198.51.100.1"))


def test_the_rate_limit_comes_before_the_lockout_and_the_password(app_module, monkeypatch):
    from chalicelib.auth import passwords

    make_user()
    for _ in range(20):
        _attempt(app_module.app, "198.51.100.1")
    monkeypatch.setattr(passwords, "verify_password", lambda *a: pytest.fail("password checked"))

    _assert_rate_limited(_attempt(app_module.app, "198.51.100.1", {"username": "jdoe", "password": "x"}))


def test_the_test_client_counts_as_one_local_ip(client):
    """Under `chalice local` every client is 127.0.0.1 (documented in NOTES.md)."""
    for _ in range(20):
        client.http.post(LOGIN, body=b"{}", headers={"Content-Type": "application/json"})

    response = client.http.post(LOGIN, body=b"{}", headers={"Content-Type": "application/json"})

    assert response.status_code == 429


def test_the_api_rate_limit_is_per_user(client, reconfigure):
    reconfigure(API_RATE_PER_MINUTE="5")
    site = make_site()
    make_user("jdoe", sites={site: "editor"})
    make_user("alice", sites={site: "editor"})
    jdoe, alice = login(client, "jdoe")["token"], login(client, "alice")["token"]

    for _ in range(5):
        assert client.http.get("/api/auth/me", headers=auth(jdoe)).status_code == 200
    refused = client.http.get("/api/auth/sites", headers=auth(jdoe))

    assert refused.status_code == 429
    assert refused.json_body["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Access-Control-Allow-Origin" in refused.headers
    assert client.http.get("/api/auth/me", headers=auth(alice)).status_code == 200


def test_the_api_rate_limit_counts_every_session_of_the_user(client, reconfigure):
    reconfigure(API_RATE_PER_MINUTE="4")
    make_user()
    first, second = login(client)["token"], login(client)["token"]

    for token in (first, second, first, second):
        assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200

    assert client.http.get("/api/auth/me", headers=auth(second)).status_code == 429


def test_the_api_rate_limit_applies_before_the_body_is_looked_at(client, reconfigure):
    reconfigure(API_RATE_PER_MINUTE="1")
    make_user()
    token = login(client)["token"]
    client.http.get("/api/auth/me", headers=auth(token))

    response = client.http.post(
        "/api/auth/site", headers={**auth(token), "Content-Type": "text/plain"}, body=b"x" * (256 * 1024 + 1)
    )

    assert response.status_code == 429


# Any well-formed header: the verdict below stands for the authorizer's answer to it.
HEADER = "Bearer eyJh.eyJz.c2ln"


def _check(auth):
    """Every check of one request, at once."""
    guard.start(auth, authorization=HEADER).settle()


def _verdict(user_id=7):
    """What the authorizer hands the API for a valid token (as guard.start reads it)."""
    key = get_settings().signing_key()
    return {
        "auth": "ok",
        "user_id": str(user_id),
        "session_id": "a" * 32,
        "site_id": "",
        "kid": tokens.key_id(key),
        "expires_at": str(int(time.time()) + 3600),
        "issued_at": str(int(time.time())),
        "auth_time_ms": str(int(time.time() * 1000)),
    }


def test_the_default_api_rate_is_600_a_minute(redis_client):
    for _ in range(600):
        _check(_verdict())

    with pytest.raises(RateLimited) as refused:
        _check(_verdict())
    assert refused.value.retry_after == 30  # the frozen clock is at second :30


@pytest.mark.parametrize("second,expected", [(0.0, 60), (45.0, 15), (48.5, 11), (59.0, 1), (59.6, 0)])
def test_retry_after_is_the_whole_seconds_until_the_window_ends_never_more(
    monkeypatch, reconfigure, second, expected
):
    reconfigure(API_RATE_PER_MINUTE="3")
    start = (int(time.time()) // 60) * 60
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: start + second))
    for _ in range(3):
        _check(_verdict())

    with pytest.raises(RateLimited) as refused:
        _check(_verdict())

    assert refused.value.retry_after == expected
    assert refused.value.retry_after <= 60 - second
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)


def test_the_window_counter_expires_when_its_window_ends(redis_client, monkeypatch):
    start = (int(time.time()) // 60) * 60
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: start + 45))
    _check(_verdict())

    key = limits.api_window_key(7, start // 60)
    assert 15_000 <= redis_client.pttl(key) <= 16_000  # until the window's end, plus a second


def test_a_new_window_starts_afresh(monkeypatch, redis_client):
    from chalicelib.errors import RateLimited

    now = [(int(time.time()) // 60) * 60 + 59]
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now[0]))
    for _ in range(20):
        limits.check_login_rate("198.51.100.1")
    with pytest.raises(RateLimited):
        limits.check_login_rate("198.51.100.1")

    now[0] += 1  # the next minute

    limits.check_login_rate("198.51.100.1")


def test_substring_searches_have_a_limit_of_their_own(client, reconfigure):
    """A search with common terms reads tens of thousands of rows: more than SEARCH_RATE_PER_MINUTE
    of them a minute by one user is a 429, while the user's other requests go on."""
    reconfigure(SEARCH_RATE_PER_MINUTE="3")
    site = make_site()
    make_user("jdoe", sites={site: "editor"})
    token = login(client, "jdoe")["token"]

    for term in ("search=abc", "title=abc", "lead=abc"):
        assert client.http.get(f"/api/interactions?{term}", headers=auth(token)).status_code == 200
    refused = client.http.get("/api/interactions?location=abc", headers=auth(token))

    assert refused.status_code == 429
    assert refused.json_body["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "30"  # the frozen clock is at second :30
    assert client.http.get("/api/interactions", headers=auth(token)).status_code == 200
    assert (
        client.http.get("/api/interactions?search=+", headers=auth(token)).status_code == 200
    )  # empty: no search


def test_the_search_limit_is_per_user(client, reconfigure):
    reconfigure(SEARCH_RATE_PER_MINUTE="1")
    site = make_site()
    make_user("jdoe", sites={site: "editor"})
    make_user("alice", sites={site: "editor"})
    jdoe, alice = login(client, "jdoe")["token"], login(client, "alice")["token"]

    assert client.http.get("/api/interactions?search=abc", headers=auth(jdoe)).status_code == 200
    assert client.http.get("/api/interactions?search=abc", headers=auth(jdoe)).status_code == 429
    assert client.http.get("/api/interactions?search=abc", headers=auth(alice)).status_code == 200
