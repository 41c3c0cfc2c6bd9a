"""An unfiltered list's `total_records` and a site's `interaction_count` come from per-site counts
kept by triggers (migration 0004): they must stay exact whatever writes the rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from chalicelib.db import session_scope
from tests import environment
from tests.factories import auth, login, make_site, make_user, post_json

BODY = {
    "title": "Kick-off",
    "type": "Meeting",
    "lead": "Ana Lima",
    "start_datetime": "2025-03-04T10:00:00Z",
    "timezone": "UTC",
}


@pytest.fixture
def editor(client):
    sites = {"a": make_site("Alpha"), "b": make_site("Beta")}
    make_user("jdoe", sites={sites["a"]: "editor", sites["b"]: "editor"})
    token = login(client)["token"]
    tokens = {}
    for name, site_id in sites.items():
        response = post_json(client, "/api/auth/site", {"site_id": site_id}, token)
        tokens[name] = response.json_body["data"]["token"]
    return {"sites": sites, "tokens": tokens}


def _listed_total(client, token: str) -> int:
    response = client.http.get("/api/interactions?per_page=1", headers=auth(token))
    assert response.status_code == 200
    return response.json_body["meta"]["pagination"]["total_records"]


def _real_count(site_id: int) -> int:
    with session_scope() as session:
        return session.execute(
            text("SELECT count(*) FROM interactions WHERE site_id = :s"), {"s": site_id}
        ).scalar_one()


def _bulk_insert(site_id: int, rows: int) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO interactions (site_id, title, type, lead, start_datetime, timezone)"
                " SELECT :s, 'Row ' || g, 'Call', 'Bo', now(), 'UTC' FROM generate_series(1, :n) AS g"
            ),
            {"s": site_id, "n": rows},
        )


def test_the_unfiltered_total_follows_creates_and_deletes(client, editor):
    token, site_id = editor["tokens"]["a"], editor["sites"]["a"]
    ids = [
        post_json(client, "/api/interactions", BODY, token).json_body["data"]["interaction"]["id"]
        for _ in range(3)
    ]
    assert _listed_total(client, token) == 3

    assert client.http.delete(f"/api/interactions/{ids[0]}", headers=auth(token)).status_code == 200

    assert _listed_total(client, token) == 2 == _real_count(site_id)


def test_the_total_follows_bulk_inserts_moves_and_truncation(client, editor):
    a, b = editor["sites"]["a"], editor["sites"]["b"]
    _bulk_insert(a, 30)
    _bulk_insert(b, 5)
    assert (_listed_total(client, editor["tokens"]["a"]), _listed_total(client, editor["tokens"]["b"])) == (
        30,
        5,
    )

    with session_scope() as session:
        session.execute(
            text(
                "UPDATE interactions SET site_id = :b WHERE id IN"
                " (SELECT id FROM interactions WHERE site_id = :a LIMIT 10)"
            ),
            {"a": a, "b": b},
        )
    assert (_listed_total(client, editor["tokens"]["a"]), _listed_total(client, editor["tokens"]["b"])) == (
        20,
        15,
    )

    with session_scope() as session:
        session.execute(text("TRUNCATE interactions CASCADE"))
    assert _listed_total(client, editor["tokens"]["a"]) == 0


def test_a_rolled_back_insert_leaves_the_total_unchanged(client, editor):
    a = editor["sites"]["a"]
    _bulk_insert(a, 4)
    with pytest.raises(RuntimeError), session_scope() as session:
        session.execute(
            text(
                "INSERT INTO interactions (site_id, title, type, lead, start_datetime, timezone)"
                " VALUES (:s, 'x', 'Call', 'Bo', now(), 'UTC')"
            ),
            {"s": a},
        )
        raise RuntimeError("abandon the transaction")

    assert _listed_total(client, editor["tokens"]["a"]) == 4 == _real_count(a)  # type: ignore[unreachable]


def test_the_site_details_count_matches_the_rows(client, editor):
    a = editor["sites"]["a"]
    _bulk_insert(a, 7)

    response = client.http.get(f"/api/sites/{a}", headers=auth(editor["tokens"]["a"]))

    assert response.json_body["data"]["site"]["interaction_count"] == 7


def _search_total(client, token: str, term: str) -> int:
    response = client.http.get(f"/api/interactions?per_page=1&search={term}", headers=auth(token))
    assert response.status_code == 200
    return response.json_body["meta"]["pagination"]["total_records"]


def test_a_remembered_filtered_total_follows_every_kind_of_write(client, editor):
    token, a, b = editor["tokens"]["a"], editor["sites"]["a"], editor["sites"]["b"]
    _bulk_insert(a, 30)  # titles "Row 1" .. "Row 30"
    assert _search_total(client, token, "row") == 30
    assert _search_total(client, token, "row") == 30  # remembered

    created = post_json(client, "/api/interactions", {**BODY, "title": "Row extra"}, token)
    assert _search_total(client, token, "row") == 31

    row_id = created.json_body["data"]["interaction"]["id"]
    response = client.http.put(
        f"/api/interactions/{row_id}",
        body='{"title": "Kick-off"}',
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert _search_total(client, token, "row") == 30

    with session_scope() as session:
        session.execute(text("DELETE FROM interactions WHERE title IN ('Row 1', 'Row 2')"))
    assert _search_total(client, token, "row") == 28

    _bulk_insert(b, 3)  # another site's writes change nothing here
    assert _search_total(client, token, "row") == 28 == _real_count(a) - 1


def test_a_remembered_total_is_not_reused_after_the_site_is_recreated(client):
    site_id = make_site("Alpha")
    make_user("jdoe", sites={site_id: "editor"})
    _bulk_insert(site_id, 12)
    assert _search_total(client, login(client)["token"], "row") == 12

    environment.truncate_all()  # ids start again: the same site id, a new row of counts
    site_id = make_site("Alpha")
    make_user("jdoe", sites={site_id: "editor"})
    _bulk_insert(site_id, 10)  # one statement again: a per-site counter would repeat its number

    assert _search_total(client, login(client)["token"], "row") == 10
