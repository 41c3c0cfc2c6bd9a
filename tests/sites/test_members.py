"""A site's admins manage its members over the API: PUT and DELETE /api/sites/{id}/users/{user_id}
(members join by invitation: tests/sites/test_invitations.py). Other sites' members are never
revealed; the last active admin stays; a demoted or removed admin's pending invitations end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chalicelib.db import session_scope
from chalicelib.models import SiteMembership, User
from tests.audit.helpers import event_count, events
from tests.factories import make_site, make_user
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, send

USERS = "/api/sites/{site}/users"


def _users(world, site=None):
    return USERS.format(site=world.site_a if site is None else site)


def _member_ids(site_id):
    with session_scope() as session:
        return set(session.scalars(select(SiteMembership.user_id).where(SiteMembership.site_id == site_id)))


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


def test_inactive_admins_do_not_count(client, world):
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
    response = send(
        client,
        "POST",
        f"/api/sites/{lonely}/invitations",
        world.token("admin"),
        {"email": "x@example.com", "role": "viewer"},
    )
    assert error(response) == (404, "RESOURCE_NOT_FOUND")
