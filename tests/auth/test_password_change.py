"""POST /api/auth/password: the caller changes their own password; every earlier session ends and a
new one begins on the same site. A wrong current password is a 400 that counts towards the lockout."""

from __future__ import annotations

import pytest

from chalicelib.auth import passwords
from chalicelib.db import session_scope
from chalicelib.models import User
from tests.audit.helpers import events
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json, select_site
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields

NEW = "a completely new password"


@pytest.fixture
def sites():
    first, second = make_site("Marketing"), make_site("Sales")
    user_id = make_user("jdoe", sites={first: "editor", second: "viewer"})
    return {"first": first, "second": second, "user": user_id}


def change(client, token, current=PASSWORD, new=NEW):
    return post_json(client, "/api/auth/password", {"current_password": current, "new_password": new}, token)


def test_a_change_ends_every_session_and_starts_one_on_the_same_site(client, sites):
    other_session = login(client)["token"]
    token = select_site(client, login(client)["token"], sites["second"])

    response = change(client, token)

    assert response.status_code == 200
    data = response.json_body["data"]
    assert set(data) == {"token", "expires_at", "current_site"}
    assert data["current_site"] == {
        "id": sites["second"],
        "name": "Sales",
        "description": "The site",
        "role": "viewer",
    }
    for old in (token, other_session):
        assert error(client.http.get("/api/auth/me", headers=auth(old))) == (401, "AUTHENTICATION_ERROR")
    me = client.http.get("/api/auth/me", headers=auth(data["token"]))
    assert me.status_code == 200 and me.json_body["data"]["current_site"]["id"] == sites["second"]
    assert post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}).status_code == 401
    assert login(client, "jdoe", NEW)
    recorded = events("user.password_changed")
    assert sorted(e["site_id"] for e in recorded) == sorted([sites["first"], sites["second"]])
    assert all(
        e["changes"] == {} and e["actor"] == {"id": sites["user"], "username": "jdoe"} for e in recorded
    )
    with session_scope() as session:
        assert passwords.verify_password(session.get(User, sites["user"]).password_hash, NEW)


def test_a_token_without_a_site_gets_one_without_a_site(client, sites):
    data = change(client, login(client)["token"]).json_body["data"]
    assert data["current_site"] is None


def test_an_account_without_sites_is_recorded_once_without_a_site(client):
    make_user("loner")
    assert change(client, login(client, "loner")["token"]).status_code == 200
    assert [e["site_id"] for e in events("user.password_changed")] == [None]


def test_a_wrong_current_password_is_a_400_naming_it_and_changes_nothing(client, sites):
    token = login(client)["token"]
    before = fingerprint()
    response = change(client, token, current="not my password")
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"current_password"}
    assert fingerprint() == before
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


def test_wrong_current_passwords_count_towards_the_login_lockout(client, sites):
    token = login(client)["token"]
    for _ in range(5):
        assert error(change(client, token, current="wrong guess")) == (400, "VALIDATION_ERROR")
    locked = change(client, token)
    assert error(locked) == (429, "ACCOUNT_LOCKED") and int(locked.headers["Retry-After"]) > 0
    assert error(post_json(client, "/api/auth/login", {"username": "JDOE", "password": PASSWORD})) == (
        429,
        "ACCOUNT_LOCKED",
    )


def test_a_success_resets_the_count(client, sites):
    token = login(client)["token"]
    for _ in range(4):
        change(client, token, current="wrong guess")
    token = change(client, token).json_body["data"]["token"]
    for _ in range(4):
        assert error(change(client, token, current="wrong again")) == (400, "VALIDATION_ERROR")
    assert change(client, token, current=NEW, new="yet another password").status_code == 200


@pytest.mark.parametrize("new", ["short", "x" * 1025, "JDoeJDoe"], ids=["short", "long", "the username"])
def test_a_refused_new_password_is_a_400_naming_it(client, new):
    make_user("jdoejdoe")
    token = login(client, "jdoejdoe")["token"]
    before = fingerprint()
    response = change(client, token, new=new)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"new_password"}
    if new == "JDoeJDoe":
        assert response.json_body["error"]["details"][0]["message"] == "must not be the username"
    assert fingerprint() == before


def test_a_repeated_change_is_a_400(client, sites):
    token = login(client)["token"]
    fresh = change(client, token).json_body["data"]["token"]
    assert error(change(client, fresh)) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "body,bad",
    [
        ({}, {"current_password", "new_password"}),
        ({"current_password": PASSWORD, "new_password": NEW, "x": 1}, {"x"}),
    ],
)
def test_a_malformed_body_is_a_400(client, sites, body, bad):
    response = post_json(client, "/api/auth/password", body, login(client)["token"])
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad


def test_a_bad_token_is_401_before_the_body(client):
    assert error(post_json(client, "/api/auth/password", {"x": 1}, "not-a-token")) == (
        401,
        "AUTHENTICATION_ERROR",
    )
