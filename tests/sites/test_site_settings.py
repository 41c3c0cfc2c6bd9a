"""POST /api/sites (platform admins) and PUT /api/sites/{id} (the site's admins)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chalicelib import cli
from chalicelib.db import session_scope
from chalicelib.models import Site, SiteMembership
from tests.audit.helpers import event_count, events
from tests.factories import make_platform_admin
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, send


def _create(client, world, body, token="admin"):
    return send(client, "POST", "/api/sites", world.token(token), body)


def test_a_platform_admin_creates_a_site_and_becomes_its_admin(client, world):
    make_platform_admin("alice")

    response = _create(client, world, {"name": "  Research  ", "description": "Labs"})

    assert response.status_code == 201
    site = response.json_body["data"]["site"]
    assert site == {
        "id": site["id"],
        "name": "Research",
        "description": "Labs",
        "created_at": site["created_at"],
        "role": "admin",
        "user_count": 1,
        "interaction_count": 0,
    }
    assert response.headers["Location"] == f"/api/sites/{site['id']}"
    with session_scope() as session:
        assert session.get(SiteMembership, (world.users["admin"], site["id"])).role == "admin"
    assert (
        send(client, "GET", f"/api/sites/{site['id']}", world.token("admin")).json_body["data"]["site"]
        == site
    )
    assert [e["action"] for e in events(site_id=site["id"])] == ["site.created", "membership.added"]
    created = events("site.created")[0]
    assert created["target"] == {"type": "site", "id": site["id"]}
    assert created["changes"] == {
        "name": {"from": None, "to": "Research"},
        "description": {"from": None, "to": "Labs"},
    }


def test_a_site_without_a_description(client, world):
    make_platform_admin("alice")
    response = _create(client, world, {"name": "Research"})
    assert response.status_code == 201 and response.json_body["data"]["site"]["description"] is None
    assert events("site.created")[0]["changes"] == {"name": {"from": None, "to": "Research"}}


@pytest.mark.parametrize("token", ["admin", "editor", "nobody"])
def test_others_get_403_even_with_a_bad_body(client, world, token):
    before = fingerprint()
    assert error(_create(client, world, {"name": "Research"}, token=token)) == (403, "AUTHORIZATION_ERROR")
    assert error(_create(client, world, {"nope": 1}, token=token)) == (403, "AUTHORIZATION_ERROR")
    assert error(send(client, "POST", "/api/sites?x=1", world.token(token), {"name": "R"})) == (
        403,
        "AUTHORIZATION_ERROR",
    )
    assert fingerprint() == before


def test_the_flag_is_read_on_every_request(client, world, capsys):
    make_platform_admin("alice")
    assert _create(client, world, {"name": "One"}).status_code == 201
    assert cli.main(["platform-admin", "alice", "--off"]) == 0
    assert error(_create(client, world, {"name": "Two"})) == (403, "AUTHORIZATION_ERROR")
    me = send(client, "GET", "/api/auth/me", world.token("admin")).json_body["data"]["user"]
    assert me["platform_admin"] is False


@pytest.mark.parametrize("name", ["Marketing", "MARKETING", " marketing "])
def test_a_taken_name_is_409_case_insensitively(client, world, name):
    make_platform_admin("alice")
    before = fingerprint()
    assert error(_create(client, world, {"name": name})) == (409, "CONFLICT")
    assert fingerprint() == before


@pytest.mark.parametrize(
    "body,bad",
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "   "}, {"name"}),
        ({"name": "x" * 101}, {"name"}),
        ({"name": None}, {"name"}),
        ({"name": 5}, {"name"}),
        ({"name": "ok", "description": "x" * 1001}, {"description"}),
        ({"name": "ok", "id": 7}, {"id"}),
        ({"name": "nul\x00"}, {"name"}),
    ],
)
def test_an_invalid_site_is_400_and_writes_nothing(client, world, body, bad):
    make_platform_admin("alice")
    before = fingerprint()
    response = _create(client, world, body)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad
    assert fingerprint() == before


# --- PUT /api/sites/{id} ----------------------------------------------------------------------------


def _edit(client, world, body, token="admin", site=None):
    return send(
        client, "PUT", f"/api/sites/{world.site_a if site is None else site}", world.token(token), body
    )


def test_an_admin_renames_the_site_and_clears_its_description(client, world):
    response = _edit(client, world, {"name": "Brand", "description": None})

    assert response.status_code == 200
    site = response.json_body["data"]["site"]
    assert (site["name"], site["description"], site["role"], site["user_count"]) == (
        "Brand",
        None,
        "admin",
        3,
    )
    [event] = events("site.updated")
    assert event["changes"] == {
        "name": {"from": "Marketing", "to": "Brand"},
        "description": {"from": "The site", "to": None},
    }
    assert event["target"] == {"type": "site", "id": world.site_a} and event["site_id"] == world.site_a


def test_the_detail_sent_back_changes_only_what_differs(client, world):
    detail = send(client, "GET", f"/api/sites/{world.site_a}", world.token("admin")).json_body["data"]["site"]
    before = event_count()
    response = _edit(client, world, detail)  # server-owned fields ignored; nothing changed
    assert response.status_code == 200 and response.json_body["data"]["site"] == detail
    assert event_count() == before

    response = _edit(client, world, {**detail, "description": "New words"})
    assert response.json_body["data"]["site"]["description"] == "New words"
    assert events("site.updated")[0]["changes"] == {"description": {"from": "The site", "to": "New words"}}


def test_a_change_of_case_is_allowed_a_rename_onto_another_site_is_409(client, world):
    assert _edit(client, world, {"name": "MARKETING"}).status_code == 200
    before = fingerprint()
    assert error(_edit(client, world, {"name": "sales"})) == (409, "CONFLICT")
    assert fingerprint() == before


@pytest.mark.parametrize(
    "body,bad",
    [
        ({"name": None}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"colour": "red"}, {"colour"}),
        ({"description": 5}, {"description"}),
    ],
)
def test_an_invalid_edit_is_400(client, world, body, bad):
    response = _edit(client, world, body)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad


def test_only_the_sites_admins_edit_it(client, world):
    assert error(_edit(client, world, {"name": "X"}, token="editor")) == (403, "AUTHORIZATION_ERROR")
    assert error(_edit(client, world, {"bad": 1}, token="viewer")) == (403, "AUTHORIZATION_ERROR")
    assert error(_edit(client, world, {"name": "X"}, token="other")) == (404, "RESOURCE_NOT_FOUND")
    assert error(_edit(client, world, {"name": "X"}, site=world.site_b)) == (403, "AUTHORIZATION_ERROR")
    assert error(_edit(client, world, {"name": "X"}, site=424242)) == (404, "RESOURCE_NOT_FOUND")
    with session_scope() as session:
        assert session.scalar(select(Site.name).where(Site.id == world.site_a)) == "Marketing"
