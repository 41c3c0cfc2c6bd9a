"""PostgreSQL failures: a connection killed between requests is replaced unnoticed; an unreachable
database is a quick 503 (never a 500 or a hang) and the app recovers by itself when it returns."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, select, text

from chalicelib import db
from chalicelib.config import normalise_database_url
from tests.factories import auth, login, post_json
from tests.faults.conftest import CREDENTIALS, assert_unavailable, timed

pytestmark = pytest.mark.faults


def _app_backend_pids() -> set[int]:
    with db.session_scope() as session:
        return {session.scalar(text("SELECT pg_backend_pid()"))}


def _terminate(pids: set[int]) -> None:
    """Ends the backends from a connection straight to the server (behind a pooler too)."""
    import os

    url = os.environ.get("TEST_DIRECT_DATABASE_URL") or os.environ["DATABASE_URL"]
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.begin() as conn:
            for pid in pids:
                assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


def test_a_connection_killed_between_requests_is_replaced_and_the_next_request_succeeds(client, user):
    token = login(client)["token"]
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200
    killed = _app_backend_pids()

    _terminate(killed)

    response = client.http.get("/api/auth/me", headers=auth(token))
    assert response.status_code == 200, response.json_body
    assert _app_backend_pids().isdisjoint(killed)


def test_login_after_the_connection_was_killed_succeeds(client, user):
    _terminate(_app_backend_pids())

    assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 200


def test_an_unreachable_database_gives_503_fast(client, pg_proxy, user):
    token = login(client)["token"]
    pg_proxy.close()

    response, elapsed = timed(lambda: client.http.get("/api/auth/me", headers=auth(token)))
    assert_unavailable(response, elapsed)

    response, elapsed = timed(lambda: post_json(client, "/api/auth/login", CREDENTIALS))
    assert_unavailable(response, elapsed)

    response, elapsed = timed(lambda: client.http.get("/api/health"))
    assert_unavailable(response, elapsed)
    assert response.json_body["error"]["details"] == [{"field": "database", "message": "unavailable"}]


def test_the_app_recovers_when_the_database_returns(client, pg_proxy, user):
    token = login(client)["token"]
    pg_proxy.close()
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 503

    pg_proxy.open()

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200
    assert client.http.get("/api/health").status_code == 200


def test_a_database_restart_between_requests_is_not_noticed(client, pg_proxy, user):
    token = login(client)["token"]
    pg_proxy.cut()  # every open connection dropped, the server reachable again at once

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


def test_a_database_that_accepts_but_never_answers_gives_503_within_the_timeout(client, pg_proxy, user):
    token = login(client)["token"]
    pg_proxy.mode = "blackhole"
    pg_proxy.cut()

    response, elapsed = timed(lambda: client.http.get("/api/auth/me", headers=auth(token)))
    assert_unavailable(response, elapsed)

    pg_proxy.mode = "forward"
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


def test_logins_refused_during_a_database_outage_do_not_lock_the_account(client, pg_proxy, user):
    pg_proxy.close()
    for _ in range(6):
        assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 503

    pg_proxy.open()

    response = post_json(client, "/api/auth/login", CREDENTIALS)
    assert response.status_code == 200, response.json_body


def test_a_login_refused_for_an_outage_writes_nothing(client, pg_proxy, user, session):
    from chalicelib.models import User

    pg_proxy.close()
    assert post_json(client, "/api/auth/login", CREDENTIALS).status_code == 503
    pg_proxy.open()

    assert session.scalar(select(User.last_login).where(User.username == "jdoe")) is None


def test_no_free_connection_within_the_pool_timeout_is_503(client, user):
    """The pool (1 + 2 overflow, for one request at a time) is exhausted by connections held
    elsewhere: the request waits POOL_TIMEOUT_S, then answers 503 — never SQLAlchemy's TimeoutError
    as a 500 — and once a connection is free again the next request succeeds."""
    token = login(client)["token"]
    engine = db.get_engine()
    held = [engine.connect() for _ in range(3)]
    for conn in held:
        conn.execute(text("SELECT 1"))
    try:
        started = time.perf_counter()
        response = post_json(client, "/api/auth/site", {"site_id": 1}, token)
        elapsed = time.perf_counter() - started
    finally:
        for conn in held:
            conn.close()

    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert db.POOL_TIMEOUT_S - 0.2 <= elapsed <= db.POOL_TIMEOUT_S + 2
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200
