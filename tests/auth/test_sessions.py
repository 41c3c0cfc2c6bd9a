"""me, auth/sites, site selection and logout."""

from __future__ import annotations

import time

import pytest

from tests.factories import auth, login, make_site, make_user, post_json, select_site
from tests.support import refusal, unverified


@pytest.fixture
def two_sites():
    alpha = make_site("Alpha", description="First")
    beta = make_site("Beta", description=None)
    user_id = make_user("jdoe", sites={alpha: "admin", beta: "viewer"})
    return {"alpha": alpha, "beta": beta, "user": user_id}


def test_me_shows_the_user_and_no_site_before_one_is_chosen(client, two_sites):
    token = login(client)["token"]

    response = client.http.get("/api/auth/me", headers=auth(token))

    assert response.status_code == 200
    data = response.json_body["data"]
    assert set(data) == {"user", "current_site"}
    assert set(data["user"]) == {"id", "username", "email", "last_login", "platform_admin"}
    assert data["user"]["id"] == two_sites["user"]
    assert data["user"]["platform_admin"] is False
    assert data["current_site"] is None


def test_auth_sites_lists_active_memberships_by_name(client, two_sites):
    closed = make_site("Aardvark", active=False)
    other = make_site("Other")
    make_user("alice", sites={other: "admin"})
    from chalicelib.db import session_scope
    from chalicelib.models import SiteMembership

    with session_scope() as s:
        s.add(SiteMembership(user_id=two_sites["user"], site_id=closed, role="admin"))
    token = login(client)["token"]

    response = client.http.get("/api/auth/sites", headers=auth(token))

    assert response.status_code == 200
    assert response.json_body == {
        "status": "success",
        "data": {
            "sites": [
                {"id": two_sites["alpha"], "name": "Alpha", "description": "First", "role": "admin"},
                {"id": two_sites["beta"], "name": "Beta", "description": None, "role": "viewer"},
            ]
        },
    }
    assert "meta" not in response.json_body


def test_selecting_a_site_returns_a_new_token_for_the_same_session(client, two_sites):
    first = login(client)
    time.sleep(1.01)  # so that a new expiry would show

    response = post_json(client, "/api/auth/site", {"site_id": two_sites["beta"]}, first["token"])

    assert response.status_code == 200
    data = response.json_body["data"]
    assert set(data) == {"token", "expires_at", "current_site"}
    assert data["current_site"] == {
        "id": two_sites["beta"],
        "name": "Beta",
        "description": None,
        "role": "viewer",
    }
    old, new = unverified(first["token"]), unverified(data["token"])
    assert data["token"] != first["token"] and new["jti"] != old["jti"]
    assert new["sid"] == old["sid"]
    assert new["exp"] == old["exp"] and data["expires_at"] == first["expires_at"]
    assert new["auth_time"] == old["auth_time"]
    assert new["site"] == two_sites["beta"]
    me = client.http.get("/api/auth/me", headers=auth(data["token"])).json_body["data"]
    assert me["current_site"]["id"] == two_sites["beta"]


def test_switching_again_never_extends_the_session(client, two_sites):
    first = login(client)
    token = select_site(client, first["token"], two_sites["alpha"])
    time.sleep(1.01)
    token = select_site(client, token, two_sites["beta"])

    assert unverified(token)["exp"] == unverified(first["token"])["exp"]


def test_the_old_token_keeps_working_after_a_switch(client, two_sites):
    first = login(client)["token"]
    select_site(client, first, two_sites["alpha"])

    assert client.http.get("/api/auth/me", headers=auth(first)).status_code == 200


@pytest.mark.parametrize("case", ["non-member", "inactive", "nonexistent", "zero", "negative", "huge"])
def test_selecting_a_site_one_may_not_use_is_403(client, two_sites, case):
    foreign = make_site("Foreign")
    closed = make_site("Closed", active=False)
    from chalicelib.db import session_scope
    from chalicelib.models import SiteMembership

    with session_scope() as s:
        s.add(SiteMembership(user_id=two_sites["user"], site_id=closed, role="admin"))
    site_id = {
        "non-member": foreign,
        "inactive": closed,
        "nonexistent": 9999,
        "zero": 0,
        "negative": -1,
        "huge": 10**30,
    }[case]
    token = login(client)["token"]

    response = post_json(client, "/api/auth/site", {"site_id": site_id}, token)

    assert response.status_code == 403
    assert response.json_body["error"]["code"] == "AUTHORIZATION_ERROR"


def test_non_member_and_nonexistent_sites_get_the_same_answer(client, two_sites):
    foreign = make_site("Foreign")
    token = login(client)["token"]

    answers = [post_json(client, "/api/auth/site", {"site_id": s}, token) for s in (foreign, 9999)]

    assert refusal(answers[0]) == refusal(answers[1])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"site_id": None},
        {"site_id": "2"},
        {"site_id": 2.0},
        {"site_id": 2.5},
        {"site_id": True},
        {"site_id": False},
        {"site_id": [2]},
        {"site_id": {"id": 2}},
        {"site_id": 1, "extra": 1},
    ],
    ids=["missing", "null", "string", "float", "fraction", "true", "false", "list", "object", "unknown"],
)
def test_selecting_a_site_needs_an_integer_site_id(client, two_sites, body):
    token = login(client)["token"]

    response = post_json(client, "/api/auth/site", body, token)

    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] in ("site_id", "extra")


@pytest.mark.parametrize("raw", [b"", b"[1]", b"{", b"\xff"])
def test_selecting_a_site_with_a_malformed_body_is_400(client, two_sites, raw):
    token = login(client)["token"]

    response = client.http.post(
        "/api/auth/site", body=raw, headers={**auth(token), "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "VALIDATION_ERROR"


def test_logout_kills_every_token_of_the_session(client, two_sites):
    first = login(client)["token"]
    alpha = select_site(client, first, two_sites["alpha"])
    beta = select_site(client, alpha, two_sites["beta"])

    response = client.http.post("/api/auth/logout", headers=auth(beta))

    assert response.status_code == 200
    assert response.json_body == {"status": "success", "data": {"message": "Successfully logged out"}}
    for token in (first, alpha, beta):
        refused = client.http.get("/api/auth/me", headers=auth(token))
        assert refused.status_code == 401
        assert refused.json_body["error"]["code"] == "AUTHENTICATION_ERROR"
    # and a dead session cannot be revived through a site switch
    assert post_json(client, "/api/auth/site", {"site_id": two_sites["alpha"]}, first).status_code == 401


def test_logout_leaves_the_users_other_sessions_alone(client, two_sites):
    phone, laptop = login(client)["token"], login(client)["token"]

    client.http.post("/api/auth/logout", headers=auth(phone))

    assert client.http.get("/api/auth/me", headers=auth(laptop)).status_code == 200


@pytest.mark.parametrize("body", [b"{}", b'{"all": false}'])
def test_logout_with_all_false_or_an_empty_object_ends_this_session_only(client, two_sites, body):
    phone, laptop = login(client)["token"], login(client)["token"]
    response = client.http.post(
        "/api/auth/logout", body=body, headers={**auth(phone), "Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert client.http.get("/api/auth/me", headers=auth(phone)).status_code == 401
    assert client.http.get("/api/auth/me", headers=auth(laptop)).status_code == 200


def test_logout_of_all_ends_every_session_of_the_user_with_the_token_alone(client, two_sites):
    """A stolen token's owner ends every session, the thief's too, without a password."""
    phone, laptop = login(client)["token"], login(client)["token"]
    laptop_site = select_site(client, laptop, two_sites["alpha"])
    make_user("other", sites={two_sites["alpha"]: "viewer"})
    other_user = login(client, "other")["token"]

    response = post_json(client, "/api/auth/logout", {"all": True}, phone)

    assert response.status_code == 200
    assert response.json_body["data"] == {"message": "Successfully logged out"}
    for token in (phone, laptop, laptop_site):
        assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 401
    assert client.http.get("/api/auth/me", headers=auth(other_user)).status_code == 200
    # A new login afterwards is a new session, and works.
    assert client.http.get("/api/auth/me", headers=auth(login(client)["token"])).status_code == 200


def test_a_second_logout_is_401(client, two_sites):
    token = login(client)["token"]
    client.http.post("/api/auth/logout", headers=auth(token))

    assert client.http.post("/api/auth/logout", headers=auth(token)).status_code == 401


def test_revocation_lasts_exactly_until_the_session_would_expire(client, two_sites, redis_client):
    token = login(client)["token"]
    claims = unverified(token)

    client.http.post("/api/auth/logout", headers=auth(token))

    ttl = redis_client.ttl(f"revoked:session:{claims['sid']}")
    remaining = claims["exp"] - int(time.time())
    assert remaining <= ttl <= remaining + 2


def test_logout_works_for_a_deactivated_user(client, two_sites, session):
    from chalicelib.models import User

    token = login(client)["token"]
    session.get(User, two_sites["user"]).is_active = False
    session.commit()

    assert client.http.post("/api/auth/logout", headers=auth(token)).status_code == 200


@pytest.mark.parametrize(
    "path,body,headers,status",
    [
        ("/api/auth/logout?scope=all", None, {}, 400),
        ("/api/auth/logout", b"{" + b" " * 262144, {"Content-Type": "application/json"}, 413),
        ("/api/auth/logout", b"{}", {"Content-Type": "text/plain"}, 415),
        ("/api/auth/logout", b'{"all": "yes"}', {"Content-Type": "application/json"}, 400),
        ("/api/auth/logout", b'{"all": true, "x": 1}', {"Content-Type": "application/json"}, 400),
        ("/api/auth/logout", b"[true]", {"Content-Type": "application/json"}, 400),
    ],
    ids=[
        "unknown query parameter",
        "body too large",
        "body not JSON",
        "all not a boolean",
        "unknown field",
        "not an object",
    ],
)
def test_a_refused_logout_leaves_the_session_alive(client, two_sites, path, body, headers, status):
    token = login(client)["token"]

    refused = client.http.post(path, body=body, headers={**auth(token), **headers})

    assert refused.status_code == status, refused.body
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200
    assert client.http.post("/api/auth/logout", headers=auth(token)).status_code == 200
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 401


def test_a_refused_logout_with_a_revoked_token_is_401(client, two_sites):
    token = login(client)["token"]
    client.http.post("/api/auth/logout", headers=auth(token))

    assert client.http.post("/api/auth/logout?scope=all", headers=auth(token)).status_code == 401
