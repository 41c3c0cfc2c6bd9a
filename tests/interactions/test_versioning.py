"""ETag and If-Match: optimistic concurrency on PUT and DELETE."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy import update as sql_update

from chalicelib.db import get_engine
from chalicelib.models import Interaction
from tests.interactions.helpers import create, error, send, stored


def put(client, token, interaction_id, body, **headers):
    return send(client, "PUT", f"/api/interactions/{interaction_id}", token, body, **headers)


def delete(client, token, interaction_id, **headers):
    return send(client, "DELETE", f"/api/interactions/{interaction_id}", token, **headers)


def test_put_with_the_current_version_succeeds(client, world):
    item = create(client, world.token("editor"))
    response = put(client, world.token("editor"), item["id"], {"title": "x"}, **{"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize(
    "header",
    [
        '"2"',
        'W/"1"',
        "1",
        '"1',
        "",
        "  ",
        '"abc"',
        '"0"',
        '"-1"',
        '"99999999999999999999"',
        '"1" "2"',
        'W/"1", W/"2"',
    ],
)
def test_put_with_a_stale_weak_or_malformed_if_match_fails_and_changes_nothing(client, world, header):
    item = create(client, world.token("editor"))
    response = put(client, world.token("editor"), item["id"], {"title": "x"}, **{"If-Match": header})
    assert error(response) == (412, "PRECONDITION_FAILED")
    assert stored(item["id"]) == item


def test_if_match_star_matches_any_existing_record(client, world):
    item = create(client, world.token("editor"))
    put(client, world.token("editor"), item["id"], {"title": "v2"})
    response = put(client, world.token("editor"), item["id"], {"title": "v3"}, **{"If-Match": "*"})
    assert response.json_body["data"]["interaction"]["version"] == 3
    assert error(put(client, world.token("editor"), 999999, {"title": "x"}, **{"If-Match": "*"})) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


def test_if_match_may_list_several_versions(client, world):
    item = create(client, world.token("editor"))
    response = put(
        client, world.token("editor"), item["id"], {"title": "x"}, **{"If-Match": '"7", W/"1", "1"'}
    )
    assert response.status_code == 200


def test_not_found_comes_before_precondition_failed(client, world):
    assert error(put(client, world.token("editor"), 424242, {"title": "x"}, **{"If-Match": 'W/"x"'})) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
    assert error(delete(client, world.token("editor"), 424242, **{"If-Match": "garbage"})) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


def test_a_stale_if_match_fails_even_for_a_no_op_body(client, world):
    item = create(client, world.token("editor"))
    assert error(put(client, world.token("editor"), item["id"], {}, **{"If-Match": '"5"'})) == (
        412,
        "PRECONDITION_FAILED",
    )


def test_delete_with_the_current_version_succeeds(client, world):
    item = create(client, world.token("editor"))
    assert delete(client, world.token("editor"), item["id"], **{"If-Match": '"1"'}).status_code == 200
    assert stored(item["id"]) is None


@pytest.mark.parametrize("header", ['"2"', 'W/"1"', "one"])
def test_delete_with_a_stale_weak_or_malformed_if_match_fails(client, world, header):
    item = create(client, world.token("editor"))
    assert error(delete(client, world.token("editor"), item["id"], **{"If-Match": header})) == (
        412,
        "PRECONDITION_FAILED",
    )
    assert stored(item["id"]) == item


def test_delete_with_if_match_star(client, world):
    item = create(client, world.token("editor"))
    assert delete(client, world.token("editor"), item["id"], **{"If-Match": "*"}).status_code == 200


SEEN: list[str] = []


def _statements(conn, cursor, statement, parameters, context, executemany):
    SEEN.append(statement)


def test_the_version_check_is_part_of_the_update_statement(client, world):
    item = create(client, world.token("editor"))
    SEEN.clear()
    event.listen(get_engine(), "before_cursor_execute", _statements)
    try:
        put(client, world.token("editor"), item["id"], {"title": "x"}, **{"If-Match": '"1"'})
    finally:
        event.remove(get_engine(), "before_cursor_execute", _statements)
    # One statement: the update (in a data-modifying WITH, with its audit event).
    updates = [s for s in SEEN if "UPDATE INTERACTIONS" in s.upper()]
    assert len(updates) == 1
    assert "interactions.version = " in updates[0] and "interactions.site_id = " in updates[0]
    assert "RETURNING" in updates[0]


def test_a_concurrent_change_between_read_and_write_makes_a_conditional_put_fail(client, world, monkeypatch):
    """Another writer commits after this request read the row: the UPDATE's version guard
    finds nothing, and the request answers 412 instead of overwriting."""
    from chalicelib.db import session_scope
    from chalicelib.interactions import service

    item = create(client, world.token("editor"))
    original = service._changes

    def changes_then_concurrent_write(row, sent):
        with session_scope() as other:
            other.execute(
                sql_update(Interaction)
                .where(Interaction.id == item["id"])
                .values(title="by someone else", version=Interaction.version + 1)
            )
        return original(row, sent)

    monkeypatch.setattr(service, "_changes", changes_then_concurrent_write)
    response = put(client, world.token("editor"), item["id"], {"lead": "mine"}, **{"If-Match": '"1"'})
    assert error(response) == (412, "PRECONDITION_FAILED")
    assert stored(item["id"])["title"] == "by someone else"
    assert stored(item["id"])["lead"] == item["lead"]


def test_an_unconditional_put_retries_on_the_fresh_record_and_keeps_the_other_change(
    client, world, monkeypatch
):
    from chalicelib.db import session_scope
    from chalicelib.interactions import service

    item = create(client, world.token("editor"))
    original = service._changes
    calls = []

    def changes_with_one_concurrent_write(row, sent):
        if not calls:
            with session_scope() as other:
                other.execute(
                    sql_update(Interaction)
                    .where(Interaction.id == item["id"])
                    .values(title="by someone else", version=Interaction.version + 1)
                )
        calls.append(row.version)
        return original(row, sent)

    monkeypatch.setattr(service, "_changes", changes_with_one_concurrent_write)
    response = put(client, world.token("editor"), item["id"], {"lead": "mine"})
    assert response.status_code == 200
    assert calls == [1, 2]
    final = response.json_body["data"]["interaction"]
    assert (final["title"], final["lead"], final["version"]) == ("by someone else", "mine", 3)
