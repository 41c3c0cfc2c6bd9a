"""Tenancy: for every interaction and site endpoint and method, a user of another site gets 404
(the users list: 404 for non-members) and the foreign row is unchanged afterwards."""

from __future__ import annotations

import pytest

from tests.interactions.helpers import VALID, error, insert_rows, send, stored

# (method, path template, body, extra headers); {id} is site A's interaction, {site} is site A.
ENDPOINTS = [
    ("GET", "/api/interactions/{id}", None, {}),
    ("PUT", "/api/interactions/{id}", {"title": "Hijacked"}, {}),
    ("PUT", "/api/interactions/{id}", {"title": "Hijacked"}, {"If-Match": '"1"'}),
    ("PUT", "/api/interactions/{id}", {"title": "Hijacked"}, {"If-Match": "*"}),
    ("PUT", "/api/interactions/{id}", {}, {}),
    ("DELETE", "/api/interactions/{id}", None, {}),
    ("DELETE", "/api/interactions/{id}", None, {"If-Match": '"1"'}),
    ("DELETE", "/api/interactions/{id}", None, {"If-Match": "*"}),
    ("GET", "/api/sites/{site}", None, {}),
    ("GET", "/api/sites/{site}/users", None, {}),
]


@pytest.fixture
def foreign(world):
    """A row in site A and a snapshot of it."""
    interaction_id = insert_rows(
        world.site_a, [{"title": "Secret plan", "notes": "only for A"}], user_id=world.users["editor"]
    )[0]
    return interaction_id, stored(interaction_id)


@pytest.mark.parametrize(
    "method,template,body,headers", ENDPOINTS, ids=[f"{m} {t} {h or ''}" for m, t, _b, h in ENDPOINTS]
)
def test_another_sites_user_gets_404_and_changes_nothing(
    client, world, foreign, method, template, body, headers
):
    interaction_id, before = foreign
    path = template.format(id=interaction_id, site=world.site_a)
    response = send(client, method, path, world.token("other"), body, **headers)
    assert error(response) == (404, "RESOURCE_NOT_FOUND")
    assert stored(interaction_id) == before


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?search=secret",
        "?title=secret",
        "?search=only%20for%20A",
        "?per_page=100&sort_by=title&sort_direction=asc",
    ],
)
def test_another_sites_list_never_shows_the_row(client, world, foreign, query):
    response = send(client, "GET", f"/api/interactions{query}", world.token("other"))
    assert response.status_code == 200
    assert response.json_body["data"]["interactions"] == []
    assert response.json_body["meta"]["pagination"]["total_records"] == 0


def test_another_sites_create_cannot_reach_site_a(client, world, foreign):
    response = send(
        client, "POST", "/api/interactions", world.token("other"), {**VALID, "site_id": world.site_a}
    )
    assert response.status_code == 201
    assert response.json_body["data"]["interaction"]["site_id"] == world.site_b


def test_the_foreign_rows_own_site_still_sees_it(client, world, foreign):
    interaction_id, before = foreign
    response = send(client, "GET", f"/api/interactions/{interaction_id}", world.token("editor"))
    assert response.json_body["data"]["interaction"] == before


def test_a_same_numbered_id_is_found_only_in_its_own_site(client, world):
    in_a = insert_rows(world.site_a, [{"title": "A"}])[0]
    in_b = insert_rows(world.site_b, [{"title": "B"}])[0]
    assert error(send(client, "GET", f"/api/interactions/{in_b}", world.token("editor"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
    assert error(send(client, "GET", f"/api/interactions/{in_a}", world.token("other"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
