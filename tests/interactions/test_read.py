"""GET /api/interactions/{id} and GET /api/interactions/types."""

from __future__ import annotations

import pytest

from chalicelib.models import INTERACTION_TYPES
from tests.interactions.helpers import create, error, send


def test_get_returns_the_interaction_with_its_etag(client, world):
    item = create(client, world.token("editor"))
    response = send(client, "GET", f"/api/interactions/{item['id']}", world.token("viewer"))
    assert response.status_code == 200
    assert response.json_body == {"status": "success", "data": {"interaction": item}}
    assert response.headers["ETag"] == '"1"'


def test_the_representation_matches_the_read_schema(client, world):
    from chalicelib.interactions.schemas import InteractionRead

    item = create(client, world.token("editor"))
    InteractionRead.model_validate(item)


def test_an_unknown_id_is_not_found(client, world):
    assert error(send(client, "GET", "/api/interactions/999999", world.token("editor"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


@pytest.mark.parametrize(
    "raw", ["0", "-1", "abc", "1.5", "01", "9223372036854775808", "99999999999999999999999", "1e3", "%20"]
)
def test_ids_that_cannot_exist_are_not_found(client, world, raw):
    assert error(send(client, "GET", f"/api/interactions/{raw}", world.token("editor"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


def test_the_largest_int64_id_is_a_plain_not_found(client, world):
    response = send(client, "GET", "/api/interactions/9223372036854775807", world.token("editor"))
    assert error(response) == (404, "RESOURCE_NOT_FOUND")


def test_types_lists_the_interaction_types(client, world):
    response = send(client, "GET", "/api/interactions/types", world.token("viewer"))
    assert response.status_code == 200
    assert response.json_body["data"] == {"types": list(INTERACTION_TYPES)}
    assert response.json_body["data"]["types"] == ["Meeting", "Call", "Email", "Update", "Review", "Training"]


def test_types_needs_a_token_but_no_site(client, world):
    assert send(client, "GET", "/api/interactions/types", world.token("no_site")).status_code == 200
    assert send(client, "GET", "/api/interactions/types", world.token("nobody")).status_code == 200
    response = send(client, "GET", "/api/interactions/types", "not-a-token")
    assert error(response) == (401, "AUTHENTICATION_ERROR")


def test_timestamps_are_utc_with_z(client, world):
    item = create(
        client, world.token("editor"), start_datetime="2023-08-15T14:00:00.250000+05:30", end_datetime=None
    )
    assert item["start_datetime"] == "2023-08-15T08:30:00.250000Z"
