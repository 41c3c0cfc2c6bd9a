"""Cursors on the other paginated lists (a site's users, an interaction's history, a site's audit
trail), their capped totals and the depth limit: the same rules as GET /api/interactions."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from chalicelib.db import session_scope
from tests.factories import make_user
from tests.interactions.helpers import create, error, fields, make_world, send


@pytest.fixture
def world():
    return make_world()


def _walk(client, token, path, name, query, per_page=2):
    seen, metas, cursor = [], [], None
    while True:
        params = {**query, "per_page": per_page, **({"cursor": cursor} if cursor else {})}
        response = send(client, "GET", f"{path}?{urlencode(params)}", token)
        assert response.status_code == 200, response.json_body
        seen += [item["id"] for item in response.json_body["data"][name]]
        metas.append(response.json_body["meta"]["pagination"])
        cursor = metas[-1]["next_cursor"]
        if cursor is None:
            return seen, metas


def _by_number(client, token, path, name, query, pages, per_page=2):
    return [
        item["id"]
        for page in range(1, pages + 1)
        for item in send(
            client, "GET", f"{path}?{urlencode({**query, 'per_page': per_page, 'page': page})}", token
        ).json_body["data"][name]
    ]


def _events(site_id: int, count: int, action: str = "interaction.updated") -> None:
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id, changes)"
                " SELECT 'cli', 'tester', :s, :a, 'interaction', 1, '{}'::jsonb FROM generate_series(1, :n)"
            ),
            {"s": site_id, "a": action, "n": count},
        )


def test_the_users_list_walks_by_cursor_in_username_order(client, world):
    for name in ("Bob", "anna", "Carl", "bea", "dora"):
        make_user(name, sites={world.site_a: "viewer"})
    path = f"/api/sites/{world.site_a}/users"
    seen, metas = _walk(client, world.token("admin"), path, "users", {})
    assert seen == _by_number(client, world.token("admin"), path, "users", {}, 5)
    assert len(seen) == len(set(seen)) == 8
    assert all("page" not in meta and meta["total_records"] == 8 for meta in metas[1:])


def test_the_audit_trail_walks_by_cursor_newest_first_with_its_filters(client, world):
    item = create(client, world.token("editor"))
    for n in range(5):
        send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": f"T{n}"})
    path = f"/api/sites/{world.site_a}/audit"
    for query in (
        {},
        {"action": "interaction.updated"},
        {"target_type": "interaction", "target_id": item["id"]},
    ):
        seen, _ = _walk(client, world.token("admin"), path, "events", query)
        assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
        assert seen == _by_number(client, world.token("admin"), path, "events", query, 4)


def test_an_interactions_history_walks_by_cursor(client, world):
    item = create(client, world.token("editor"))
    for n in range(4):
        send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": f"T{n}"})
    path = f"/api/interactions/{item['id']}/history"
    seen, metas = _walk(client, world.token("viewer"), path, "events", {})
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert metas[0]["total_records"] == 5 and metas[-1]["next_cursor"] is None


def test_a_cursor_of_one_list_is_refused_by_another(client, world):
    item = create(client, world.token("editor"))
    other = create(client, world.token("editor"))
    for n in range(3):
        send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": f"T{n}"})
    history = send(client, "GET", f"/api/interactions/{item['id']}/history?per_page=1", world.token("admin"))
    cursor = history.json_body["meta"]["pagination"]["next_cursor"]
    for path in (
        f"/api/interactions/{other['id']}/history",  # another interaction
        f"/api/sites/{world.site_a}/audit",
        f"/api/sites/{world.site_a}/users",
        "/api/interactions",
    ):
        response = send(client, "GET", f"{path}?cursor={cursor}", world.token("admin"))
        assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"cursor"}, path


def test_an_audit_cursor_with_other_filters_is_a_400(client, world):
    _events(world.site_a, 3)
    path = f"/api/sites/{world.site_a}/audit"
    cursor = send(client, "GET", f"{path}?per_page=1", world.token("admin")).json_body["meta"]["pagination"]
    response = send(
        client, "GET", f"{path}?action=interaction.&cursor={cursor['next_cursor']}", world.token("admin")
    )
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"cursor"}


def test_a_bad_cursor_on_the_audit_trail_answers_403_to_a_member_who_is_not_admin(client, world):
    response = send(client, "GET", f"/api/sites/{world.site_a}/audit?cursor=AAAA", world.token("viewer"))
    assert error(response) == (403, "AUTHORIZATION_ERROR")


@pytest.mark.parametrize(
    "path", ["/api/sites/{site}/users", "/api/sites/{site}/audit", "/api/interactions/{item}/history"]
)
def test_every_list_has_the_depth_limit(client, world, path):
    item = create(client, world.token("editor"))
    url = path.format(site=world.site_a, item=item["id"])
    response = send(client, "GET", f"{url}?page=101&per_page=100", world.token("admin"))
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"page"}
    assert "cursor" in response.json_body["error"]["details"][0]["message"]
    assert send(client, "GET", f"{url}?page=100&per_page=100", world.token("admin")).status_code == 200


def test_the_audit_totals_stop_at_10000(client, world):
    _events(world.site_a, 10_002)
    _events(world.site_a, 3, "site.updated")
    path = f"/api/sites/{world.site_a}/audit"
    unfiltered = send(client, "GET", path, world.token("admin")).json_body["meta"]["pagination"]
    assert (unfiltered["total_records"], unfiltered["total_exact"], unfiltered["total_pages"]) == (
        10_000,
        False,
        400,
    )
    filtered = send(client, "GET", f"{path}?action=interaction.updated", world.token("admin")).json_body
    assert (
        filtered["meta"]["pagination"]["total_records"],
        filtered["meta"]["pagination"]["total_exact"],
    ) == (
        10_000,
        False,
    )
    small = send(client, "GET", f"{path}?action=site.updated", world.token("admin")).json_body["meta"][
        "pagination"
    ]
    assert (small["total_records"], small["total_exact"]) == (3, True)
