"""PUT /api/interactions/{id}: partial updates, nulls, time zones, no-op bodies."""

from __future__ import annotations

import pytest

from tests.interactions.helpers import create, error, fields, send, stored


def put(client, token, interaction_id, body, **headers):
    return send(client, "PUT", f"/api/interactions/{interaction_id}", token, body, **headers)


def test_only_the_fields_sent_change(client, world):
    item = create(client, world.token("editor"))
    response = put(client, world.token("admin"), item["id"], {"title": "  Renamed  "})
    assert response.status_code == 200
    updated = response.json_body["data"]["interaction"]
    assert updated["title"] == "Renamed"
    unchanged = {k: v for k, v in item.items() if k not in ("title", "version", "updated_by", "updated_at")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["version"] == 2
    assert updated["updated_by"] == world.users["admin"]
    assert updated["updated_at"].endswith("Z")
    assert response.headers["ETag"] == '"2"'
    assert stored(item["id"]) == updated


def test_every_change_increments_the_version(client, world):
    item = create(client, world.token("editor"))
    for n, title in enumerate(["a", "b", "c"], start=2):
        assert (
            put(client, world.token("editor"), item["id"], {"title": title}).json_body["data"]["interaction"][
                "version"
            ]
            == n
        )


def test_null_clears_an_optional_field(client, world):
    item = create(client, world.token("editor"))
    updated = put(
        client,
        world.token("editor"),
        item["id"],
        {"location": None, "description": None, "end_datetime": None},
    ).json_body["data"]["interaction"]
    assert (updated["location"], updated["description"], updated["end_datetime"]) == (None, None, None)


@pytest.mark.parametrize("field", ["title", "type", "lead", "start_datetime", "timezone"])
def test_null_for_a_required_field_is_rejected(client, world, field):
    item = create(client, world.token("editor"))
    response = put(client, world.token("editor"), item["id"], {field: None})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {field}
    assert stored(item["id"]) == item


def test_the_same_field_rules_apply(client, world):
    item = create(client, world.token("editor"))
    response = put(
        client,
        world.token("editor"),
        item["id"],
        {"title": "", "type": "Party", "timezone": "UTC ", "notes": "\u0000", "extra": 1},
    )
    assert fields(response) == {"title", "type", "timezone", "notes", "extra"}


def test_server_owned_fields_are_ignored(client, world):
    item = create(client, world.token("editor"))
    response = put(
        client,
        world.token("editor"),
        item["id"],
        {"version": 40, "site_id": world.site_b, "id": 5, "created_by": 1},
    )
    assert response.status_code == 200
    assert response.json_body["data"]["interaction"] == item


def test_an_empty_body_returns_the_record_unchanged(client, world):
    item = create(client, world.token("editor"))
    response = put(client, world.token("editor"), item["id"], {})
    assert response.status_code == 200
    assert response.json_body["data"]["interaction"] == item
    assert response.headers["ETag"] == '"1"'


def test_sending_the_same_values_keeps_the_version(client, world):
    item = create(client, world.token("editor"))
    same = {
        k: item[k]
        for k in (
            "title",
            "type",
            "lead",
            "timezone",
            "location",
            "description",
            "notes",
            "start_datetime",
            "end_datetime",
        )
    }
    response = put(client, world.token("editor"), item["id"], {**same, "title": f" {item['title']} "})
    assert response.json_body["data"]["interaction"] == item
    # the same instants written as local times are the same values too
    response = put(client, world.token("editor"), item["id"], {"start_datetime": "2023-08-15T14:00:00"})
    assert response.json_body["data"]["interaction"]["version"] == 1


def test_changing_only_the_time_zone_keeps_the_stored_instants(client, world):
    item = create(client, world.token("editor"))
    updated = put(client, world.token("editor"), item["id"], {"timezone": "Asia/Tokyo"}).json_body["data"][
        "interaction"
    ]
    assert updated["timezone"] == "Asia/Tokyo"
    assert (updated["start_datetime"], updated["end_datetime"]) == (
        item["start_datetime"],
        item["end_datetime"],
    )
    assert updated["version"] == 2


def test_an_offsetless_time_is_local_in_the_new_time_zone_when_both_are_sent(client, world):
    item = create(client, world.token("editor"))
    updated = put(
        client,
        world.token("editor"),
        item["id"],
        {"timezone": "Asia/Tokyo", "start_datetime": "2023-08-16T09:00:00", "end_datetime": None},
    )
    assert updated.json_body["data"]["interaction"]["start_datetime"] == "2023-08-16T00:00:00Z"


def test_an_offsetless_time_is_local_in_the_stored_time_zone(client, world):
    item = create(client, world.token("editor"))
    updated = put(client, world.token("editor"), item["id"], {"end_datetime": "2023-08-15T16:00:00"})
    assert updated.json_body["data"]["interaction"]["end_datetime"] == "2023-08-15T20:00:00Z"


def test_end_before_the_stored_start_is_rejected_after_the_merge(client, world):
    item = create(client, world.token("editor"))
    response = put(client, world.token("editor"), item["id"], {"end_datetime": "2023-08-15T13:00:00"})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"end_datetime"}
    response = put(client, world.token("editor"), item["id"], {"start_datetime": "2023-08-15T16:00:00"})
    assert fields(response) == {"end_datetime"}
    assert stored(item["id"]) == item


def test_a_local_time_in_a_gap_of_the_stored_time_zone_is_rejected(client, world):
    item = create(client, world.token("editor"), end_datetime=None)
    response = put(client, world.token("editor"), item["id"], {"start_datetime": "2024-03-10T02:15:00"})
    assert fields(response) == {"start_datetime"}


def test_field_rules_come_before_not_found(client, world):
    response = put(client, world.token("editor"), 999999, {"title": ""})
    assert error(response) == (400, "VALIDATION_ERROR")


def test_rules_across_the_stored_record_come_after_not_found_and_precondition(client, world):
    item = create(client, world.token("editor"))
    late_end = {"end_datetime": "2000-01-01T00:00:00Z"}
    assert error(put(client, world.token("editor"), 999999, late_end)) == (404, "RESOURCE_NOT_FOUND")
    assert error(put(client, world.token("editor"), item["id"], late_end, **{"If-Match": '"9"'})) == (
        412,
        "PRECONDITION_FAILED",
    )
    assert error(put(client, world.token("editor"), item["id"], late_end, **{"If-Match": '"1"'})) == (
        400,
        "VALIDATION_ERROR",
    )


def test_a_malformed_body_is_rejected(client, world):
    item = create(client, world.token("editor"))
    assert error(send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), "nope")) == (
        400,
        "VALIDATION_ERROR",
    )
    assert error(send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), "null")) == (
        400,
        "VALIDATION_ERROR",
    )


def test_time_rules_the_body_can_answer_alone_are_reported_with_the_field_rules(client, world):
    body = {
        "title": "",
        "timezone": "America/New_York",
        "start_datetime": "2024-03-10T02:30:00",
        "end_datetime": "2024-03-09T10:00:00Z",
    }
    response = put(client, world.token("editor"), 999999, body)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"title", "start_datetime"}
    response = put(
        client,
        world.token("editor"),
        999999,
        {"start_datetime": "2024-05-02T00:00:00Z", "end_datetime": "2024-05-01T00:00:00Z"},
    )
    assert fields(response) == {"end_datetime"}
