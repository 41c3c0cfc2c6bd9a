"""A site's admins manage its members over the API: POST /api/sites/{id}/users (an existing account,
or a new pending one with a setup token), POST .../{user_id}/setup-token, PUT and DELETE
.../{user_id}. Other sites' members are never revealed; the last active, non-pending admin stays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from chalicelib.db import session_scope
from chalicelib.kit.secret import digest
from chalicelib.kit.text import EMAIL_PATTERN, check_email
from chalicelib.models import SetupToken, Site, SiteMembership, User
from tests.audit.helpers import event_count, events
from tests.factories import make_site, make_user
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, send

USERS = "/api/sites/{site}/users"


def _users(world, site=None):
    return USERS.format(site=world.site_a if site is None else site)


def add(client, world, body, token="admin", site=None):
    return send(client, "POST", _users(world, site), world.token(token), body)


def new_member(name="newbie", role="viewer", **extra):
    return {"username": name, "email": f"{name}@example.com", "role": role, **extra}


def _pending_id(client, world, name="newbie"):
    response = add(client, world, new_member(name))
    assert response.status_code == 201, response.json_body
    return response.json_body["data"]


def _member_ids(site_id):
    with session_scope() as session:
        return set(session.scalars(select(SiteMembership.user_id).where(SiteMembership.site_id == site_id)))


# --- adding -----------------------------------------------------------------------------------------


def test_an_existing_account_is_added_with_its_role(client, world):
    response = add(client, world, {"username": "NORA", "email": "Nora@Example.com", "role": "editor"})

    assert response.status_code == 201
    data = response.json_body["data"]
    assert data == {
        "user": {
            "id": world.users["nobody"],
            "username": "nora",
            "email": "nora@example.com",
            "role": "editor",
            "last_login": None,
            "is_active": True,
            "pending": False,
        },
        "created": False,
    }
    assert world.users["nobody"] in _member_ids(world.site_a)
    [event] = events("membership.added")
    assert event["target"] == {"type": "user", "id": world.users["nobody"]}
    assert event["site_id"] == world.site_a and event["changes"] == {"role": {"from": None, "to": "editor"}}
    assert event["actor"] == {"id": world.users["admin"], "username": "alice"} and event["via"] == "api"


def test_a_new_account_is_created_pending_with_a_setup_token(client, world):
    response = add(client, world, new_member("Newbie", "admin"))

    assert response.status_code == 201
    data = response.json_body["data"]
    assert data["created"] is True
    assert data["user"] == {
        "id": data["user"]["id"],
        "username": "Newbie",
        "email": "Newbie@example.com",
        "role": "admin",
        "last_login": None,
        "is_active": True,
        "pending": True,
    }
    assert len(data["setup_token"]) >= 43  # 32 random bytes, URL-safe base64
    expires = datetime.fromisoformat(data["setup_expires_at"].replace("Z", "+00:00"))
    assert 259200 - 60 < (expires - datetime.now(UTC)).total_seconds() <= 259200
    with session_scope() as session:
        user = session.get(User, data["user"]["id"])
        assert user.password_hash is None and user.created_by_site_id == world.site_a
        stored = session.get(SetupToken, user.id)
        # Only the token's digest is stored.
        assert (
            stored.token_hash == digest(data["setup_token"]) and data["setup_token"] not in stored.token_hash
        )
    assert [e["action"] for e in events(site_id=world.site_a)] == [
        "user.created",
        "user.setup_token_issued",
        "membership.added",
    ]
    created = events("user.created")[0]
    assert created["changes"] == {
        "username": {"from": None, "to": "Newbie"},
        "email": {"from": None, "to": "Newbie@example.com"},
    }


def test_pending_members_are_listed_and_counted(client, world):
    _pending_id(client, world, "newbie")

    listed = send(client, "GET", _users(world), world.token("admin")).json_body
    newbie = next(u for u in listed["data"]["users"] if u["username"] == "newbie")
    assert newbie["pending"] is True
    assert all(u["pending"] is False for u in listed["data"]["users"] if u["username"] != "newbie")
    site = send(client, "GET", f"/api/sites/{world.site_a}", world.token("admin")).json_body["data"]["site"]
    assert site["user_count"] == 4  # alice, eddie, vera and the pending newbie


@pytest.mark.parametrize(
    "case",
    [
        "username only",
        "email only",
        "two accounts",
        "pending here",
        "already a member",
        "pending elsewhere",
        "case of another name",
    ],
)
def test_anything_but_one_free_name_or_one_whole_account_is_the_same_409(client, world, case):
    make_user("mia", email="mia@example.com")
    _pending_id(client, world, "waiting")
    elsewhere = send(client, "POST", _users(world, world.site_b), world.token("other"), new_member("faraway"))
    assert elsewhere.status_code == 201
    body = {
        "username only": {"username": "mia", "email": "someone-else@example.com"},
        "email only": {"username": "somebody", "email": "mia@example.com"},
        "two accounts": {"username": "mia", "email": "nora@example.com"},
        "pending here": {"username": "waiting", "email": "waiting@example.com"},
        "already a member": {"username": "eddie", "email": "eddie@example.com"},
        "pending elsewhere": {"username": "faraway", "email": "faraway@example.com"},
        "case of another name": {"username": "MIA", "email": "mia2@example.com"},
    }[case]
    before = fingerprint()

    response = add(client, world, {**body, "role": "viewer"})

    assert error(response) == (409, "CONFLICT")
    assert response.json_body["error"]["message"] == "username or e-mail already in use"
    assert fingerprint() == before


@pytest.mark.parametrize(
    "body,bad",
    [
        ({"username": "ab", "email": "ab@example.com", "role": "viewer"}, {"username"}),
        ({"username": "has space", "email": "x@example.com", "role": "viewer"}, {"username"}),
        ({"username": "ünïcode", "email": "x@example.com", "role": "viewer"}, {"username"}),
        ({"username": "x" * 65, "email": "x@example.com", "role": "viewer"}, {"username"}),
        ({"username": "okname", "email": "a@b@c", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "@example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "me@", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "a b@example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "a" * 250 + "@x.io", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "jösé@example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "a..b@example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "a" * 65 + "@example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "a@-example.com", "role": "viewer"}, {"email"}),
        ({"username": "okname", "email": "x@example.com", "role": "owner"}, {"role"}),
        ({"username": "okname", "email": "x@example.com"}, {"role"}),
        (
            {"username": 5, "email": None, "role": "viewer", "password": "x"},
            {"username", "email", "password"},
        ),
    ],
)
def test_an_invalid_body_is_a_400_naming_every_field_and_writes_nothing(client, world, body, bad):
    before = fingerprint()
    response = add(client, world, body)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == bad
    assert fingerprint() == before


@pytest.mark.parametrize("token", ["editor", "viewer"])
def test_members_who_are_not_admins_get_403_whatever_the_body(client, world, token):
    assert error(add(client, world, new_member(), token=token)) == (403, "AUTHORIZATION_ERROR")
    assert error(add(client, world, {"bogus": 1}, token=token)) == (403, "AUTHORIZATION_ERROR")
    response = send(client, "POST", _users(world) + "?dry_run=1", world.token(token), new_member())
    assert error(response) == (403, "AUTHORIZATION_ERROR")


def test_a_non_member_gets_400_for_a_bad_body_then_404(client, world):
    # The order of checks: 403 (a member who is not admin), 400 (body), 404 (not a member).
    assert error(add(client, world, {"bogus": 1}, token="other")) == (400, "VALIDATION_ERROR")
    assert error(add(client, world, new_member(), token="other")) == (404, "RESOURCE_NOT_FOUND")
    assert error(send(client, "POST", _users(world) + "?x=1", world.token("admin"), new_member())) == (
        400,
        "VALIDATION_ERROR",
    )


@pytest.mark.parametrize("site", ["424242", "0", "abc", str(2**31)])
def test_an_unknown_site_is_404(client, world, site):
    response = send(client, "POST", f"/api/sites/{site}/users", world.token("admin"), new_member())
    assert error(response) == (404, "RESOURCE_NOT_FOUND")


def test_an_inactive_site_is_404_even_for_its_admin(client, world):
    with session_scope() as session:
        session.execute(update(Site).where(Site.id == world.site_a).values(is_active=False))
    assert error(add(client, world, new_member())) == (404, "RESOURCE_NOT_FOUND")


def test_the_path_site_counts_not_the_tokens(client, world):
    # alice's token is scoped to site A; she is only a viewer of site B.
    assert error(add(client, world, new_member(), site=world.site_b)) == (403, "AUTHORIZATION_ERROR")
    no_site = send(client, "POST", _users(world, world.site_b), world.token("nobody"), new_member())
    assert error(no_site) == (404, "RESOURCE_NOT_FOUND")


def test_a_demoted_admin_loses_the_right_on_the_next_request(client, world):
    with session_scope() as session:
        session.execute(
            update(SiteMembership)
            .where(SiteMembership.user_id == world.users["admin"], SiteMembership.site_id == world.site_a)
            .values(role="editor")
        )
    assert error(add(client, world, new_member())) == (403, "AUTHORIZATION_ERROR")


# --- setup tokens -----------------------------------------------------------------------------------


def _reissue(client, world, user_id, token="admin", site=None):
    return send(client, "POST", f"{_users(world, site)}/{user_id}/setup-token", world.token(token))


def test_a_new_setup_token_replaces_the_old_one(client, world):
    first = _pending_id(client, world)
    user_id = first["user"]["id"]

    response = _reissue(client, world, user_id)

    assert response.status_code == 201
    data = response.json_body["data"]
    assert set(data) == {"setup_token", "setup_expires_at"} and data["setup_token"] != first["setup_token"]
    with session_scope() as session:
        assert session.scalars(select(SetupToken.token_hash).where(SetupToken.user_id == user_id)).all() == [
            digest(data["setup_token"])
        ]
    assert len(events("user.setup_token_issued", target_id=user_id)) == 2


def test_a_setup_token_for_an_account_with_a_password_is_409(client, world):
    before = event_count()
    assert error(_reissue(client, world, world.users["editor"])) == (409, "CONFLICT")
    assert event_count() == before


def test_a_setup_token_for_a_non_member_or_another_sites_member_is_404(client, world):
    faraway = send(client, "POST", _users(world, world.site_b), world.token("other"), new_member("faraway"))
    other_pending = faraway.json_body["data"]["user"]["id"]
    for user_id in (other_pending, world.users["nobody"], 999999, "abc"):
        assert error(_reissue(client, world, user_id)) == (404, "RESOURCE_NOT_FOUND")


def test_only_the_site_that_created_a_pending_account_issues_its_tokens(client, world):
    faraway = send(client, "POST", _users(world, world.site_b), world.token("other"), new_member("faraway"))
    user_id = faraway.json_body["data"]["user"]["id"]
    with session_scope() as session:  # an operator granted it a second site
        session.add(SiteMembership(user_id=user_id, site_id=world.site_a, role="viewer"))
    assert error(_reissue(client, world, user_id)) == (403, "AUTHORIZATION_ERROR")


def test_editors_cannot_issue_setup_tokens(client, world):
    user_id = _pending_id(client, world)["user"]["id"]
    assert error(_reissue(client, world, user_id, token="editor")) == (403, "AUTHORIZATION_ERROR")


# --- roles ------------------------------------------------------------------------------------------


def _role(client, world, user_id, role, token="admin", site=None):
    return send(client, "PUT", f"{_users(world, site)}/{user_id}", world.token(token), {"role": role})


def test_a_role_change_answers_the_member_and_records_from_and_to(client, world):
    response = _role(client, world, world.users["editor"], "viewer")

    assert response.status_code == 200
    assert response.json_body["data"]["user"]["role"] == "viewer"
    assert response.json_body["data"]["user"]["username"] == "eddie"
    [event] = events("membership.role_changed")
    assert event["changes"] == {"role": {"from": "editor", "to": "viewer"}}
    assert event["target"] == {"type": "user", "id": world.users["editor"]}


def test_the_same_role_again_records_nothing(client, world):
    before = event_count()
    response = _role(client, world, world.users["editor"], "editor")
    assert response.status_code == 200 and response.json_body["data"]["user"]["role"] == "editor"
    assert event_count() == before


def test_the_last_admin_cannot_step_down(client, world):
    before = fingerprint()
    response = _role(client, world, world.users["admin"], "editor")
    assert error(response) == (409, "CONFLICT")
    assert fingerprint() == before


def test_an_admin_may_step_down_while_another_active_admin_remains(client, world):
    assert _role(client, world, world.users["editor"], "admin").status_code == 200
    assert _role(client, world, world.users["admin"], "viewer").status_code == 200
    assert error(send(client, "GET", _users(world), world.token("admin"))) == (403, "AUTHORIZATION_ERROR")


@pytest.mark.parametrize("other", ["pending", "inactive"])
def test_pending_or_inactive_admins_do_not_count(client, world, other):
    if other == "pending":
        add(client, world, new_member("second", "admin"))
    else:
        make_user("second", active=False, sites={world.site_a: "admin"})
    assert error(_role(client, world, world.users["admin"], "editor")) == (409, "CONFLICT")


def test_a_role_change_for_another_sites_member_is_404(client, world):
    assert error(_role(client, world, world.users["other"], "viewer")) == (404, "RESOURCE_NOT_FOUND")
    assert error(_role(client, world, "999999", "viewer")) == (404, "RESOURCE_NOT_FOUND")


def test_a_role_change_checks_the_body_before_the_member(client, world):
    response = send(client, "PUT", f"{_users(world)}/999999", world.token("admin"), {"role": "boss"})
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"role"}
    response = send(
        client, "PUT", f"{_users(world)}/999999", world.token("admin"), {"role": "viewer", "x": 1}
    )
    assert fields(response) == {"x"}


# --- removal ----------------------------------------------------------------------------------------


def _remove(client, world, user_id, token="admin", site=None):
    return send(client, "DELETE", f"{_users(world, site)}/{user_id}", world.token(token))


def test_removing_a_member_keeps_an_account_with_a_password(client, world):
    response = _remove(client, world, world.users["editor"])

    assert response.status_code == 200 and response.json_body["data"] == {"message": "Member removed"}
    assert world.users["editor"] not in _member_ids(world.site_a)
    with session_scope() as session:
        assert session.get(User, world.users["editor"]) is not None
    [event] = events("membership.removed")
    assert event["changes"] == {"role": {"from": "editor", "to": None}}
    assert events("user.deleted") == []


def test_a_pending_account_losing_its_only_site_is_deleted_with_its_token(client, world):
    user_id = _pending_id(client, world)["user"]["id"]

    assert _remove(client, world, user_id).status_code == 200

    with session_scope() as session:
        assert session.get(User, user_id) is None
        assert session.scalar(select(func.count()).select_from(SetupToken)) == 0
    [deleted] = events("user.deleted")
    assert deleted["site_id"] == world.site_a
    assert deleted["changes"] == {
        "username": {"from": "newbie", "to": None},
        "email": {"from": "newbie@example.com", "to": None},
    }


def test_a_pending_account_with_another_site_stays(client, world):
    user_id = _pending_id(client, world)["user"]["id"]
    with session_scope() as session:
        session.add(SiteMembership(user_id=user_id, site_id=world.site_b, role="viewer"))
    assert _remove(client, world, user_id).status_code == 200
    with session_scope() as session:
        assert session.get(User, user_id) is not None


def test_the_last_admin_cannot_leave(client, world):
    before = fingerprint()
    assert error(_remove(client, world, world.users["admin"])) == (409, "CONFLICT")
    assert fingerprint() == before


def test_an_admin_may_leave_while_another_admin_remains(client, world):
    _role(client, world, world.users["viewer"], "admin")
    assert _remove(client, world, world.users["admin"]).status_code == 200
    assert world.users["admin"] not in _member_ids(world.site_a)


def test_removing_another_sites_member_is_404_and_reveals_nothing(client, world):
    before = fingerprint()
    assert error(_remove(client, world, world.users["other"])) == (404, "RESOURCE_NOT_FOUND")
    assert error(_remove(client, world, world.users["nobody"])) == (404, "RESOURCE_NOT_FOUND")
    assert fingerprint() == before


@pytest.mark.parametrize("token", ["editor", "viewer"])
def test_removing_needs_the_admin_role(client, world, token):
    assert error(_remove(client, world, world.users["viewer"], token=token)) == (403, "AUTHORIZATION_ERROR")


def test_a_removed_member_loses_the_site_on_the_next_request(client, world):
    _remove(client, world, world.users["editor"])
    response = send(client, "GET", "/api/interactions", world.token("editor"))
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_a_site_created_with_the_cli_may_have_no_admin_and_then_nobody_administers_it(client, world):
    lonely = make_site("Lonely")
    make_user("lena", sites={lonely: "editor"})
    assert error(add(client, world, new_member(), site=lonely)) == (404, "RESOURCE_NOT_FOUND")


@settings(max_examples=300, deadline=None)
@given(address=st.from_regex(EMAIL_PATTERN, fullmatch=True))
def test_every_address_add_member_accepts_is_a_format_email_address(address):
    """The OpenAPI document says `format: email` of every address the API stores: whatever the
    server's rule accepts, JSON Schema's format check (the fuzzer's) accepts too."""
    import jsonschema_rs

    try:
        check_email(address)
    except ValueError:
        return
    assert jsonschema_rs.validator_for({"format": "email"}, validate_formats=True).is_valid(address)
