"""Who may do what: roles, the active site, and the order of checks in front of the handlers."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from chalicelib.db import session_scope
from chalicelib.models import Site, SiteMembership
from tests.interactions.helpers import VALID, create, error, insert_rows, send, stored

WRITES = [
    ("POST", "/api/interactions"),
    ("PUT", "/api/interactions/{id}"),
    ("DELETE", "/api/interactions/{id}"),
]
SITE_SCOPED = [("GET", "/api/interactions"), ("GET", "/api/interactions/{id}"), *WRITES]


def _path(template, interaction_id):
    return template.replace("{id}", str(interaction_id))


def _body(method):
    return {"POST": VALID, "PUT": {"title": "Changed"}}.get(method)


@pytest.mark.parametrize("method,template", WRITES)
@pytest.mark.parametrize("target", ["own", "unknown", "foreign", "impossible"])
def test_a_viewer_gets_403_on_every_write_whatever_the_id(client, world, method, template, target):
    own = insert_rows(world.site_a, [{}])[0]
    foreign = insert_rows(world.site_b, [{}])[0]
    interaction_id = {"own": own, "unknown": 999999, "foreign": foreign, "impossible": "abc"}[target]
    response = send(client, method, _path(template, interaction_id), world.token("viewer"), _body(method))
    assert error(response) == (403, "AUTHORIZATION_ERROR")
    assert stored(own)["version"] == 1 and stored(foreign)["version"] == 1


def test_a_viewer_gets_403_before_the_body_is_validated(client, world):
    response = send(client, "POST", "/api/interactions", world.token("viewer"), {"title": ""})
    assert error(response) == (403, "AUTHORIZATION_ERROR")


def test_a_viewer_may_read(client, world):
    interaction_id = insert_rows(world.site_a, [{}])[0]
    assert send(client, "GET", "/api/interactions", world.token("viewer")).status_code == 200
    assert (
        send(client, "GET", f"/api/interactions/{interaction_id}", world.token("viewer")).status_code == 200
    )


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_editors_and_admins_may_write(client, world, role):
    created = create(client, world.token(role))
    path = f"/api/interactions/{created['id']}"
    assert send(client, "PUT", path, world.token(role), {"title": "New"}).status_code == 200
    assert send(client, "DELETE", path, world.token(role)).status_code == 200


@pytest.mark.parametrize("method,template", SITE_SCOPED)
def test_no_active_site_is_403_site_context_required(client, world, method, template):
    interaction_id = insert_rows(world.site_a, [{}])[0]
    response = send(client, method, _path(template, interaction_id), world.token("no_site"), _body(method))
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_site_context_comes_before_the_body_rules(client, world):
    response = send(client, "POST", "/api/interactions", world.token("no_site"), {"bogus": 1})
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_a_removed_membership_takes_effect_on_the_next_request(client, world):
    assert send(client, "GET", "/api/interactions", world.token("editor")).status_code == 200
    with session_scope() as session:
        session.execute(delete(SiteMembership).where(SiteMembership.user_id == world.users["editor"]))
    response = send(client, "GET", "/api/interactions", world.token("editor"))
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_a_role_downgrade_takes_effect_on_the_next_request(client, world):
    with session_scope() as session:
        session.execute(
            update(SiteMembership)
            .where(SiteMembership.user_id == world.users["editor"])
            .values(role="viewer")
        )
    response = send(client, "POST", "/api/interactions", world.token("editor"), VALID)
    assert error(response) == (403, "AUTHORIZATION_ERROR")


def test_an_inactive_site_is_no_site_context(client, world):
    with session_scope() as session:
        session.execute(update(Site).where(Site.id == world.site_a).values(is_active=False))
    response = send(client, "GET", "/api/interactions", world.token("editor"))
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_types_need_a_token(client, world):
    response = send(client, "GET", "/api/interactions/types", "not-a-token")
    assert error(response) == (401, "AUTHENTICATION_ERROR")


@pytest.mark.parametrize("method,template", SITE_SCOPED)
def test_an_invalid_token_is_401_on_every_interaction_endpoint(client, world, method, template):
    response = send(client, method, _path(template, 1), "not-a-token", _body(method))
    assert error(response) == (401, "AUTHENTICATION_ERROR")


def test_a_too_large_body_is_413_before_the_role_check(client, world):
    body = {**VALID, "notes": "x" * (257 * 1024)}
    assert error(send(client, "POST", "/api/interactions", world.token("viewer"), body)) == (
        413,
        "PAYLOAD_TOO_LARGE",
    )


def test_a_body_without_json_content_type_is_415_before_the_role_check(client, world):
    import json

    response = client.http.post(
        "/api/interactions",
        body=json.dumps(VALID),
        headers={"Authorization": f"Bearer {world.token('viewer')}", "Content-Type": "text/plain"},
    )
    assert error(response) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_creates_land_in_the_tokens_site_whatever_the_body_says(client, world):
    created = create(client, world.token("admin"), site_id=world.site_b)
    assert created["site_id"] == world.site_a
    assert created["created_by"] == world.users["admin"]


def test_a_member_of_two_sites_sees_only_the_tokens_site(client, world):
    # alice is admin of site A and viewer of site B; her token is scoped to A.
    in_b = insert_rows(world.site_b, [{}])[0]
    assert error(send(client, "GET", f"/api/interactions/{in_b}", world.token("admin"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
