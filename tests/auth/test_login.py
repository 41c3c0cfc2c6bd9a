"""POST /api/auth/login: the envelope, automatic site context, case-insensitive usernames and
identical failures."""

from __future__ import annotations

import re

from argon2 import PasswordHasher

from chalicelib.auth import passwords
from chalicelib.models import User
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json
from tests.support import unverified

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ISO_Z_FRACTION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def _login(client, username="jdoe", password=PASSWORD):
    return post_json(client, "/api/auth/login", {"username": username, "password": password})


def test_login_envelope_is_exactly_the_contracts(client):
    site = make_site("Marketing", description="Campaigns")
    user_id = make_user("jdoe", email="jdoe@example.com", sites={site: "editor"})

    response = _login(client)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json_body
    assert set(body) == {"status", "data"} and body["status"] == "success"
    data = body["data"]
    assert set(data) == {"token", "expires_at", "user", "sites", "current_site"}
    assert data["user"] == {"id": user_id, "username": "jdoe", "email": "jdoe@example.com"}
    site_json = {"id": site, "name": "Marketing", "description": "Campaigns", "role": "editor"}
    assert data["sites"] == [site_json]
    assert data["current_site"] == site_json
    assert ISO_Z.match(data["expires_at"]), data["expires_at"]
    claims = unverified(data["token"])
    assert claims["exp"] - claims["iat"] == 86400  # the default lifetime
    from chalicelib.kit.timestamps import epoch_isoformat

    assert data["expires_at"] == epoch_isoformat(claims["exp"])


def test_single_site_user_gets_a_token_scoped_to_that_site(client):
    site = make_site("Marketing")
    make_site("Closed", active=False)
    make_user(sites={site: "viewer"})

    data = login(client)

    assert unverified(data["token"])["site"] == site
    me = client.http.get("/api/auth/me", headers=auth(data["token"])).json_body["data"]
    assert me["current_site"]["id"] == site
    # A site-scoped endpoint works straight away, without POST /api/auth/site.
    listing = client.http.get("/api/interactions", headers=auth(data["token"]))
    assert listing.status_code == 200, listing.json_body


def test_a_single_active_site_counts_as_one_even_with_inactive_memberships(client):
    active, closed = make_site("Marketing"), make_site("Closed", active=False)
    make_user(sites={active: "editor", closed: "admin"})

    data = login(client)

    assert [s["name"] for s in data["sites"]] == ["Marketing"]
    assert data["current_site"]["id"] == active


def test_multi_site_user_gets_no_site_and_the_sites_by_name(client):
    zeta, alpha = make_site("Zeta"), make_site("Alpha")
    make_user(sites={zeta: "viewer", alpha: "admin"})

    data = login(client)

    assert data["current_site"] is None
    assert unverified(data["token"])["site"] is None
    assert [(s["name"], s["role"]) for s in data["sites"]] == [("Alpha", "admin"), ("Zeta", "viewer")]
    me = client.http.get("/api/auth/me", headers=auth(data["token"])).json_body["data"]
    assert me["current_site"] is None


def test_user_without_sites_logs_in_with_no_site(client):
    make_user()

    data = login(client)

    assert data["sites"] == [] and data["current_site"] is None


def test_usernames_are_case_insensitive(client):
    site = make_site()
    user_id = make_user("JDoe", sites={site: "editor"})

    for spelling in ("JDoe", "jdoe", "JDOE", "  jDoE "):
        data = login(client, spelling)
        assert data["user"]["id"] == user_id
        assert data["user"]["username"] == "JDoe"  # as stored


def test_unknown_user_wrong_password_and_inactive_user_fail_identically(client):
    make_user("jdoe")
    make_user("gone", active=False)

    answers = [
        _login(client, "nobody", PASSWORD),
        _login(client, "jdoe", "wrong password"),
        _login(client, "gone", PASSWORD),  # the right password of a deactivated user
    ]

    assert {r.status_code for r in answers} == {401}
    for r in answers:  # alike but for the request's own id
        assert r.json_body == {
            "status": "error",
            "error": {
                "code": "AUTHENTICATION_ERROR",
                "message": "Invalid username or password",
                "request_id": r.headers["X-Request-Id"],
            },
        }
    header_names = [sorted(set(r.headers) - {"X-Request-Id"}) for r in answers]
    assert header_names[0] == header_names[1] == header_names[2]


def test_every_failure_checks_a_password_hash(client, monkeypatch):
    """Unknown users cost an argon2 verification too, so timing does not tell them apart."""
    make_user("jdoe")
    make_user("gone", active=False)
    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda h, p: calls.append(h) or real(h, p))  # type: ignore[func-returns-value]

    for username, password in (("nobody", PASSWORD), ("jdoe", "wrong"), ("gone", PASSWORD)):
        _login(client, username, password)

    assert len(calls) == 3
    assert calls[0] is None  # the unknown user: a dummy hash is checked instead


def test_login_sets_last_login(client, session):
    site = make_site()
    user_id = make_user(sites={site: "editor"})

    data = login(client)

    me = client.http.get("/api/auth/me", headers=auth(data["token"])).json_body["data"]
    assert ISO_Z_FRACTION.match(me["user"]["last_login"]), me["user"]["last_login"]
    assert session.get(User, user_id).last_login is not None


def test_an_outdated_hash_is_upgraded_on_login(client, session):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user_id = make_user()
    session.get(User, user_id).password_hash = weak
    session.commit()

    login(client)

    session.expire_all()
    stored = session.get(User, user_id).password_hash
    assert stored != weak and not passwords.needs_rehash(stored)
    login(client)  # and the new hash verifies


def test_invalid_bodies_are_400_with_every_field(client):
    response = post_json(client, "/api/auth/login", {"username": 5, "extra": 1})

    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {d["field"] for d in error["details"]} == {"username", "password", "extra"}


def test_an_overlong_password_is_refused_before_hashing(client, monkeypatch):
    make_user()
    monkeypatch.setattr(passwords, "verify_password", lambda *a: (_ for _ in ()).throw(AssertionError))

    response = _login(client, "jdoe", "x" * 1025)

    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "password"


def test_malformed_logins_do_not_count_towards_the_lockout(client):
    make_user()
    for _ in range(8):
        assert post_json(client, "/api/auth/login", {"username": "jdoe"}).status_code == 400

    assert _login(client).status_code == 200
