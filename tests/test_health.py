"""GET /api/health: public; 200 when the database and the cache answer, 503 naming what fails."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from chalicelib import db
from tests import environment

CLOSED_DATABASE = "postgresql://nobody@127.0.0.1:1/nothing"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def test_health_is_ok_when_everything_answers(client):
    response = client.http.get("/api/health")

    assert response.status_code == 200
    assert response.json_body == {"status": "success", "data": {"database": "ok", "cache": "ok"}}
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["X-Request-Id"]


def test_health_needs_no_token_and_ignores_a_bad_one(client):
    assert client.http.get("/api/health", headers={"Authorization": "Bearer forged"}).status_code == 200


@pytest.mark.parametrize(
    "env,failing",
    [
        ({"DATABASE_URL": CLOSED_DATABASE}, ["database"]),
        ({"REDIS_URL": CLOSED_REDIS}, ["cache"]),
        ({"DATABASE_URL": CLOSED_DATABASE, "REDIS_URL": CLOSED_REDIS}, ["database", "cache"]),
    ],
    ids=["database", "cache", "both"],
)
def test_health_is_503_naming_the_failing_part(client, reconfigure, env, failing):
    reconfigure(**env)

    started = time.perf_counter()
    response = client.http.get("/api/health")

    assert time.perf_counter() - started < 5
    assert response.status_code == 503
    error = response.json_body["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["details"] == [{"field": name, "message": "unavailable"} for name in failing]
    for name in failing:
        assert name in error["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    for leak in ("127.0.0.1", "nobody", "Traceback"):
        assert leak not in response.body.decode()


def test_health_recovers_once_the_database_is_back(client, reconfigure):
    reconfigure(DATABASE_URL=CLOSED_DATABASE)
    assert client.http.get("/api/health").status_code == 503

    reconfigure(DATABASE_URL=environment.configure()["DATABASE_URL"])

    assert client.http.get("/api/health").status_code == 200


def test_connections_the_server_closed_are_replaced_not_answered_503(client):
    """After a failover or an idle timeout the pooled connection is dead. Checked out at once after
    the kill, it may still look alive (the backend dies asynchronously): the request's first
    statement then fails on it and is tried once more on a fresh connection (pg8000 sometimes
    reports this as a raw socket error)."""
    admin = create_engine(environment.configure()["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        for _ in range(10):  # the reset races the ping: try it both ways
            assert client.http.get("/api/health").status_code == 200
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND application_name = 'interactions-api'"
                    ),
                    {"db": environment.TEST_DATABASE},
                )
            response = client.http.get("/api/health")
            assert response.status_code == 200, response.json_body
    finally:
        admin.dispose()
        db.reset_engine()
