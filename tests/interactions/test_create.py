"""POST /api/interactions: field rules, time rules, server-owned and unknown fields."""

from __future__ import annotations

import pytest

from tests.interactions.helpers import VALID, create, error, fields, send, stored


def post(client, token, body):
    return send(client, "POST", "/api/interactions", token, body)


def test_create_returns_201_with_the_representation_etag_and_location(client, world):
    response = post(client, world.token("editor"), VALID)
    assert response.status_code == 201
    item = response.json_body["data"]["interaction"]
    assert set(item) == {
        "id",
        "site_id",
        "title",
        "type",
        "lead",
        "start_datetime",
        "timezone",
        "end_datetime",
        "location",
        "description",
        "notes",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "version",
    }
    assert item["site_id"] == world.site_a
    assert item["created_by"] == world.users["editor"]
    assert item["updated_by"] is None and item["updated_at"] is None
    assert item["version"] == 1
    assert item["created_at"].endswith("Z")
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/interactions/{item['id']}"
    assert stored(item["id"]) == item


def test_offsetless_times_are_local_in_the_records_time_zone(client, world):
    item = create(client, world.token("editor"))
    assert item["start_datetime"] == "2023-08-15T18:00:00Z"  # 14:00 EDT
    assert item["end_datetime"] == "2023-08-15T19:30:00Z"
    assert item["timezone"] == "America/New_York"


def test_times_with_an_offset_are_taken_as_they_are(client, world):
    item = create(
        client,
        world.token("editor"),
        start_datetime="2023-08-15T14:00:00+02:00",
        end_datetime="2023-08-15T12:30:00Z",
    )
    assert item["start_datetime"] == "2023-08-15T12:00:00Z"
    assert item["end_datetime"] == "2023-08-15T12:30:00Z"


def test_a_local_time_in_a_daylight_saving_gap_is_rejected(client, world):
    response = post(
        client,
        world.token("editor"),
        {**VALID, "start_datetime": "2024-03-10T02:30:00", "end_datetime": None},
    )
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"start_datetime"}


def test_an_ambiguous_local_time_is_its_first_occurrence(client, world):
    item = create(client, world.token("editor"), start_datetime="2024-11-03T01:30:00", end_datetime=None)
    assert item["start_datetime"] == "2024-11-03T05:30:00Z"  # still EDT (-04:00), not EST


def test_end_before_start_is_rejected(client, world):
    response = post(client, world.token("editor"), {**VALID, "end_datetime": "2023-08-15T13:59:59"})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert response.json_body["error"]["details"] == [
        {"field": "end_datetime", "message": "must not be before start_datetime"}
    ]


def test_end_equal_to_start_is_allowed(client, world):
    item = create(client, world.token("editor"), end_datetime=VALID["start_datetime"])
    assert item["end_datetime"] == item["start_datetime"]


def test_every_invalid_field_is_reported(client, world):
    response = post(
        client,
        world.token("editor"),
        {
            "title": "   ",
            "type": "Party",
            "lead": "x" * 101,
            "start_datetime": "yesterday",
            "timezone": "Mars/Olympus",
            "end_datetime": 5,
            "location": "x" * 256,
            "description": "x" * 10_001,
            "notes": ["no"],
            "colour": "red",
        },
    )
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {
        "title",
        "type",
        "lead",
        "start_datetime",
        "timezone",
        "end_datetime",
        "location",
        "description",
        "notes",
        "colour",
    }


def test_field_rules_and_time_rules_are_reported_together(client, world):
    response = post(
        client, world.token("editor"), {**VALID, "title": "", "end_datetime": "2023-08-15T10:00:00"}
    )
    assert fields(response) == {"title", "end_datetime"}


def test_missing_required_fields_are_each_reported(client, world):
    response = post(client, world.token("editor"), {})
    assert fields(response) == {"title", "type", "lead", "start_datetime", "timezone"}
    assert {d["message"] for d in response.json_body["error"]["details"]} == {"field required"}


def test_null_for_a_required_field_is_rejected(client, world):
    response = post(client, world.token("editor"), {**VALID, "title": None, "timezone": None})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"title", "timezone"}


def test_strings_are_trimmed_and_lengths_count_after_trimming(client, world):
    item = create(
        client,
        world.token("editor"),
        title="  " + "t" * 255 + "  ",
        lead=" Ann ",
        location="  Room 1 ",
        notes=" n ",
    )
    assert item["title"] == "t" * 255
    assert (item["lead"], item["location"], item["notes"]) == ("Ann", "Room 1", "n")


@pytest.mark.parametrize(
    "field,limit",
    [("title", 255), ("lead", 100), ("location", 255), ("description", 10_000), ("notes", 10_000)],
)
def test_length_limits_are_inclusive(client, world, field, limit):
    assert create(client, world.token("editor"), **{field: "é" * limit})[field] == "é" * limit
    response = post(client, world.token("editor"), {**VALID, field: "é" * (limit + 1)})
    assert fields(response) == {field}


def test_blank_optional_text_is_stored_as_null(client, world):
    item = create(client, world.token("editor"), location="   ", description="")
    assert item["location"] is None and item["description"] is None


def test_type_must_be_one_of_the_types_list(client, world):
    assert fields(post(client, world.token("editor"), {**VALID, "type": "meeting"})) == {"type"}
    assert create(client, world.token("editor"), type="Training")["type"] == "Training"


@pytest.mark.parametrize(
    "name",
    [
        "UTC ",
        "../etc",
        "/etc/passwd",
        "america/new_york",
        "",
        "EST5EDT/../UTC",
        "Europe/Nowhere",
        "zoneinfo/UTC",
    ],
)
def test_time_zone_names_outside_the_iana_database_are_rejected(client, world, name):
    assert fields(post(client, world.token("editor"), {**VALID, "timezone": name})) == {"timezone"}


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "Asia/Kolkata", "America/Argentina/Buenos_Aires"])
def test_iana_time_zone_names_are_accepted(client, world, name):
    assert create(client, world.token("editor"), timezone=name)["timezone"] == name


@pytest.mark.parametrize(
    "value",
    [
        "2023-08-15",
        "15/08/2023 14:00",
        "2023-08-15T25:00:00",
        "2023-02-30T10:00:00",
        "2023-08-15T14:00:00+24:00",
        "2023-08-15T14:00:00.1234567",
        "0001-01-01T00:00:00+01:00",
        1692108000,
        True,
    ],
)
def test_malformed_datetimes_are_rejected(client, world, value):
    assert fields(post(client, world.token("editor"), {**VALID, "start_datetime": value})) == {
        "start_datetime"
    }


@pytest.mark.parametrize("field", ["title", "lead", "location", "description", "notes"])
def test_nul_characters_are_rejected_with_the_field_named(client, world, field):
    response = post(client, world.token("editor"), {**VALID, field: "a\u0000b"})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {field}


def test_unpaired_surrogates_are_rejected(client, world):
    body = (
        '{"title": "a\\ud800b", "type": "Call", "lead": "x", "start_datetime": "2024-01-01T10:00:00Z", '
        '"timezone": "UTC"}'
    )
    response = send(client, "POST", "/api/interactions", world.token("editor"), body)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"title"}


def test_non_string_values_are_not_coerced(client, world):
    response = post(client, world.token("editor"), {**VALID, "title": 42, "lead": True})
    assert fields(response) == {"title", "lead"}


def test_unknown_fields_are_rejected(client, world):
    response = post(client, world.token("editor"), {**VALID, "priority": "high"})
    assert response.json_body["error"]["details"] == [{"field": "priority", "message": "unknown field"}]


def test_server_owned_fields_are_ignored(client, world):
    item = create(
        client,
        world.token("editor"),
        id=999,
        site_id=world.site_b,
        created_by=12345,
        created_at="2000-01-01T00:00:00Z",
        updated_by=1,
        updated_at="2000-01-01T00:00:00Z",
        version=77,
    )
    assert item["id"] != 999
    assert item["site_id"] == world.site_a
    assert item["created_by"] == world.users["editor"]
    assert item["version"] == 1 and item["updated_at"] is None


def test_a_body_that_is_not_an_object_is_rejected(client, world):
    assert error(send(client, "POST", "/api/interactions", world.token("editor"), "[]")) == (
        400,
        "VALIDATION_ERROR",
    )
    assert error(send(client, "POST", "/api/interactions", world.token("editor"), "{")) == (
        400,
        "VALIDATION_ERROR",
    )


def test_location_reflects_a_stage_prefix_in_the_request_path(client, world, app_module):
    from chalicelib.http import location

    class Request:
        context = {"path": "/api/api/interactions", "resourcePath": "/api/interactions"}

    assert location(Request(), "/api/interactions/7") == "/api/api/interactions/7"
    Request.context = {"path": "/api/interactions/"}
    assert location(Request(), "/api/interactions/7") == "/api/interactions/7"


def test_location_reflects_a_stage_prefix_on_a_route_with_path_parameters():
    from chalicelib.http import location

    class Request:
        context = {"path": "/api/api/sites/3/invitations", "resourcePath": "/api/sites/{site_id}/invitations"}
        uri_params = {"site_id": "3"}

    assert location(Request(), "/api/sites/3/invitations/9") == "/api/api/sites/3/invitations/9"
    Request.context = {"path": "/api/sites/3/invitations", "resourcePath": "/api/sites/{site_id}/invitations"}
    assert location(Request(), "/api/sites/3/invitations/9") == "/api/sites/3/invitations/9"
