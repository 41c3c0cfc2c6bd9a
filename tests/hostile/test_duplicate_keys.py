"""A key given twice in one JSON object is a 400 naming it (RFC 7493), on every endpoint that takes
a body: `{"role": "viewer", "role": "editor"}` never silently takes the last. Nothing is written,
nothing sent, no session ended."""

from __future__ import annotations

import pytest

from chalicelib.endpoint import REGISTRY
from tests import mailbox
from tests.factories import make_platform_admin
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import create, send

VALID_REST = '"type": "Meeting", "lead": "Jo", "start_datetime": "2023-08-15T14:00:00", "timezone": "UTC"'

# (method, path template, the caller, the body with a key twice, the key)
CASES = {
    "create an interaction": (
        "POST",
        "/api/interactions",
        "editor",
        '{"title": "Harmless", "title": "Spoofed", ' + VALID_REST + "}",
        "title",
    ),
    "update an interaction": (
        "PUT",
        "/api/interactions/{row}",
        "editor",
        '{"lead": "Jo", "lead": "Al"}',
        "lead",
    ),
    "log in": (
        "POST",
        "/api/auth/login",
        None,
        '{"username": "eddie", "password": "correct horse battery staple", "username": "alice"}',
        "username",
    ),
    "choose a site": ("POST", "/api/auth/site", "admin", '{"site_id": {a}, "site_id": {b}}', "site_id"),
    "change the password": (
        "POST",
        "/api/auth/password",
        "editor",
        '{"current_password": "correct horse battery staple", "new_password": "one new passphrase", '
        '"new_password": "another passphrase"}',
        "new_password",
    ),
    "log out": ("POST", "/api/auth/logout", "editor", '{"all": false, "all": true}', "all"),
    "preview an invitation": (
        "POST",
        "/api/auth/invitations/preview",
        None,
        '{"token": "abc", "token": "def"}',
        "token",
    ),
    "accept an invitation": (
        "POST",
        "/api/auth/invitations/accept",
        None,
        '{"token": "abc", "username": "newbie", "password": "a long password", "username": "admin"}',
        "username",
    ),
    "create a site": ("POST", "/api/sites", "admin", '{"name": "Alpha", "name": "Beta"}', "name"),
    "rename a site": ("PUT", "/api/sites/{a}", "admin", '{"name": "Alpha", "name": "Beta"}', "name"),
    "invite": (
        "POST",
        "/api/sites/{a}/invitations",
        "admin",
        '{"email": "newbie@example.com", "role": "viewer", "role": "admin"}',
        "role",
    ),
    "change a role": (
        "PUT",
        "/api/sites/{a}/users/{viewer}",
        "admin",
        '{"role": "viewer", "role": "editor"}',
        "role",
    ),
}
ROUTES = {
    "/api/interactions/{row}": "/api/interactions/{interaction_id}",
    "/api/sites/{a}": "/api/sites/{site_id}",
    "/api/sites/{a}/invitations": "/api/sites/{site_id}/invitations",
    "/api/sites/{a}/users/{viewer}": "/api/sites/{site_id}/users/{user_id}",
}


def test_every_endpoint_that_takes_a_body_is_attacked_here(app_module):
    with_body = {key for key, entry in REGISTRY.items() if entry.spec.body is not None}
    attacked = {(ROUTES.get(path, path), method) for method, path, *_ in CASES.values()}

    assert with_body - attacked == set()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_key_given_twice_is_400_naming_it_and_changes_nothing(client, world, case):
    method, path, caller, body, key = case
    make_platform_admin("alice")
    row = create(client, world.token("editor"))["id"]
    values = {"row": row, "a": world.site_a, "b": world.site_b, "viewer": world.users["viewer"]}
    before = fingerprint()

    response = send(
        client,
        method,
        path.format(**values),
        world.token(caller) if caller else None,
        body.replace("{a}", str(world.site_a)).replace("{b}", str(world.site_b)),
    )

    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_ERROR"
    assert response.json_body["error"]["details"] == [{"field": key, "message": "given more than once"}]
    assert fingerprint() == before
    assert mailbox.messages() == []
    if caller:  # the session goes on (a logout whose body is refused ends nothing)
        assert send(client, "GET", "/api/auth/me", world.token(caller)).status_code == 200


def test_every_key_given_twice_is_named_once(client, world):
    body = '{"title": "a", "lead": "b", "title": "c", "lead": "d", "title": "e", ' + VALID_REST + "}"

    response = send(client, "POST", "/api/interactions", world.token("editor"), body)

    assert response.status_code == 400
    assert [d["field"] for d in response.json_body["error"]["details"]] == ["title", "lead"]


def test_a_key_twice_in_a_nested_object_is_refused_too(client, world):
    body = '{"title": {"x": 1, "x": 2}, ' + VALID_REST + "}"

    response = send(client, "POST", "/api/interactions", world.token("editor"), body)

    assert response.json_body["error"]["details"] == [{"field": "x", "message": "given more than once"}]


def test_the_same_key_in_two_objects_is_not_a_duplicate(client, world):
    """Keys are unique per object: this body is only refused for its field's type."""
    body = '{"title": {"lead": 1}, "lead": "Jo", ' + VALID_REST.replace('"lead": "Jo", ', "") + "}"

    response = send(client, "POST", "/api/interactions", world.token("editor"), body)

    assert response.status_code == 400
    assert [d["field"] for d in response.json_body["error"]["details"]] == ["title"]


def test_the_duplicate_check_comes_after_the_rights(client, world):
    """Order of checks: a viewer's write is a 403, whatever its body."""
    body = '{"title": "a", "title": "b", ' + VALID_REST + "}"

    response = send(client, "POST", "/api/interactions", world.token("viewer"), body)

    assert response.status_code == 403
