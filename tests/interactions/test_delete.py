"""DELETE /api/interactions/{id}."""

from __future__ import annotations

from tests.interactions.helpers import create, error, send, stored


def test_delete_removes_the_interaction(client, world):
    item = create(client, world.token("editor"))
    response = send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("admin"))
    assert response.status_code == 200
    assert response.json_body == {"status": "success", "data": {"message": "Interaction deleted"}}
    assert stored(item["id"]) is None
    assert error(send(client, "GET", f"/api/interactions/{item['id']}", world.token("admin"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


def test_deleting_twice_is_not_found(client, world):
    item = create(client, world.token("editor"))
    send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("editor"))
    assert error(send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("editor"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


def test_delete_of_an_id_that_cannot_exist_is_not_found(client, world):
    assert error(send(client, "DELETE", "/api/interactions/-5", world.token("editor"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
