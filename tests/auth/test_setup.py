"""POST /api/auth/setup: a pending account's first password, with the one-time setup token a site
admin handed out. Pending accounts cannot log in, and nothing tells them apart from a wrong password."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from chalicelib.db import session_scope
from chalicelib.models import SetupToken, Site, User
from tests.audit.helpers import events
from tests.factories import post_json
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, make_world, send
from tests.support import call_app, json_request

NEW_PASSWORD = "my very own password"


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def pending(client, world):
    response = send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/users",
        world.token("admin"),
        {"username": "newcomer", "email": "newcomer@example.com", "role": "editor"},
    )
    assert response.status_code == 201
    return response.json_body["data"]


def setup(client, token, password=NEW_PASSWORD):
    return post_json(client, "/api/auth/setup", {"token": token, "password": password})


def test_setup_sets_the_password_and_answers_like_a_login(client, world, pending):
    response = setup(client, pending["setup_token"])

    assert response.status_code == 200
    data = response.json_body["data"]
    assert data["user"] == {
        "id": pending["user"]["id"],
        "username": "newcomer",
        "email": "newcomer@example.com",
    }
    assert data["sites"] == [
        {"id": world.site_a, "name": "Marketing", "description": "The site", "role": "editor"}
    ]
    assert data["current_site"] == data["sites"][0]
    me = send(client, "GET", "/api/interactions", data["token"])
    assert me.status_code == 200  # the token is scoped to the one site
    assert (
        post_json(client, "/api/auth/login", {"username": "newcomer", "password": NEW_PASSWORD}).status_code
        == 200
    )
    listed = send(client, "GET", f"/api/sites/{world.site_a}/users", world.token("admin")).json_body["data"][
        "users"
    ]
    assert next(u for u in listed if u["username"] == "newcomer")["pending"] is False
    [event] = events("user.setup_completed")
    assert event["site_id"] == world.site_a and event["changes"] == {}
    assert event["actor"] == {"id": pending["user"]["id"], "username": "newcomer"}


def test_a_setup_token_works_once(client, pending):
    assert setup(client, pending["setup_token"]).status_code == 200
    response = setup(client, pending["setup_token"], "another password")
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"token"}


@pytest.mark.parametrize("how", ["unknown", "expired", "replaced", "deactivated"])
def test_an_unusable_token_is_a_400_naming_it_and_changes_nothing(client, world, pending, how):
    token = pending["setup_token"]
    if how == "unknown":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif how == "expired":
        with session_scope() as session:
            session.execute(update(SetupToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    elif how == "replaced":
        again = send(
            client,
            "POST",
            f"/api/sites/{world.site_a}/users/{pending['user']['id']}/setup-token",
            world.token("admin"),
        )
        assert again.status_code == 201
    else:
        with session_scope() as session:
            session.execute(update(User).where(User.username == "newcomer").values(is_active=False))
    before = fingerprint()

    response = setup(client, token)

    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"token"}
    assert fingerprint() == before


@pytest.mark.parametrize(
    "password,message",
    [("short", "8"), ("x" * 1025, "1024"), ("NEWCOMER", "username"), ("NewComer", "username")],
)
def test_a_refused_password_is_a_400_naming_it_and_keeps_the_token(client, pending, password, message):
    before = fingerprint()
    response = setup(client, pending["setup_token"], password)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"password"}
    assert message in response.json_body["error"]["details"][0]["message"]
    assert fingerprint() == before
    assert setup(client, pending["setup_token"]).status_code == 200


@pytest.mark.parametrize(
    "body,bad",
    [
        ({}, {"token", "password"}),
        ({"token": 5, "password": NEW_PASSWORD}, {"token"}),
        ({"token": "t", "password": NEW_PASSWORD, "extra": 1}, {"extra"}),
    ],
)
def test_a_malformed_setup_body_is_a_400(client, body, bad):
    response = post_json(client, "/api/auth/setup", body)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad


def test_a_site_deactivated_since_gives_no_sites(client, world, pending):
    with session_scope() as session:
        session.execute(update(Site).where(Site.id == world.site_a).values(is_active=False))
    data = setup(client, pending["setup_token"]).json_body["data"]
    assert data["sites"] == [] and data["current_site"] is None


def test_setup_ignores_an_authorization_header(client, pending):
    response = post_json(
        client,
        "/api/auth/setup",
        {"token": pending["setup_token"], "password": NEW_PASSWORD},
        Authorization="Bearer not-a-token",
    )
    assert response.status_code == 200


def test_setup_is_rate_limited_per_client_ip(app_module, reconfigure, pending):
    reconfigure(LOGIN_RATE_PER_MINUTE="3")
    body = json_request({"token": "not-a-real-token", "password": NEW_PASSWORD})
    answers = [
        call_app(app_module.app, "POST", "/api/auth/setup", source_ip="198.51.100.7", **body)
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert answers[-1].json_body["error"]["code"] == "RATE_LIMITED"
    assert 0 <= int(answers[-1].headers["Retry-After"]) <= 60
    # Another client is not held back, and a malformed body counts too.
    other = call_app(
        app_module.app,
        "POST",
        "/api/auth/setup",
        source_ip="198.51.100.8",
        headers={"Content-Type": "application/json"},
        body="{",
    )
    assert other.status_code == 400
    good = json_request({"token": pending["setup_token"], "password": NEW_PASSWORD})
    assert (
        call_app(app_module.app, "POST", "/api/auth/setup", source_ip="198.51.100.7", **good).status_code
        == 429
    )


def test_a_pending_account_cannot_log_in_and_looks_like_a_wrong_password(client, pending):
    pending_login = post_json(
        client, "/api/auth/login", {"username": "newcomer", "password": "anything at all"}
    )
    wrong = post_json(client, "/api/auth/login", {"username": "eddie", "password": "anything at all"})
    assert pending_login.status_code == wrong.status_code == 401
    assert json.dumps(pending_login.json_body) == json.dumps(wrong.json_body)


def test_the_setup_token_is_never_stored(client, pending):
    with session_scope() as session:
        dump = json.dumps(
            [[str(v) for v in row] for row in session.execute(SetupToken.__table__.select()).all()]
        )
    assert pending["setup_token"] not in dump
