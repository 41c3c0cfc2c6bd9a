"""Hostile bodies: sizes around the limits, deep nesting, huge arrays, NUL, invalid UTF-8, bodies
that are not objects. Each gets its documented 4xx and writes nothing, or is stored as sent."""

from __future__ import annotations

import json

import pytest

from chalicelib.http import MAX_BODY_BYTES
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import VALID, send

PATH = "/api/interactions"
KIB = 1024


def _without(key):
    """VALID without `key`, which the test appends itself (a key given twice is a 400 of its own)."""
    return {k: v for k, v in VALID.items() if k != key}


def _padded(body: dict, size: int) -> str:
    """`body` as JSON padded with insignificant whitespace to exactly `size` bytes."""
    raw = json.dumps(body, ensure_ascii=False)
    missing = size - len(raw.encode())
    assert missing >= 0, "the body is already larger than asked"
    return raw[:-1] + " " * missing + "}"


def _error(response):
    return response.status_code, response.json_body["error"]["code"]


def _one_interaction(client, world) -> int:
    return send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]["id"]


# --- size -----------------------------------------------------------------------------------------


def test_a_body_of_256_kib_plus_one_is_413_and_writes_nothing(client, world):
    before = fingerprint()
    body = _padded(VALID, MAX_BODY_BYTES + 1)
    assert len(body.encode()) == 256 * KIB + 1

    assert _error(send(client, "POST", PATH, world.token("editor"), body)) == (413, "PAYLOAD_TOO_LARGE")
    assert fingerprint() == before


def test_a_body_of_exactly_256_kib_is_accepted(client, world):
    response = send(client, "POST", PATH, world.token("editor"), _padded(VALID, MAX_BODY_BYTES))

    assert response.status_code == 201, response.json_body


def test_every_write_endpoint_refuses_256_kib_plus_one(client, world):
    row = _one_interaction(client, world)
    before = fingerprint()
    huge = _padded({"title": "x"}, MAX_BODY_BYTES + 1)
    for method, path, token in [
        ("PUT", f"{PATH}/{row}", world.token("editor")),
        ("POST", "/api/auth/login", None),
        ("POST", "/api/auth/site", world.token("admin")),
        ("POST", "/api/auth/logout", world.token("admin")),
    ]:
        assert _error(send(client, method, path, token, huge)) == (413, "PAYLOAD_TOO_LARGE"), path
    assert fingerprint() == before


def test_a_413_comes_before_the_body_is_parsed(client, world):
    not_json = "{" + "x" * MAX_BODY_BYTES
    assert send(client, "POST", PATH, world.token("editor"), not_json).status_code == 413


def test_a_valid_body_of_64_kib_plus_one_is_stored_exactly(client, world):
    # Multi-byte text makes the fields large in bytes while within their limits in characters.
    body = {
        **VALID,
        "title": "\U0001f600" * 255,
        "description": "\u00e9\u4e2d" * 5000,
        "notes": "\u4e2d" * 10_000,
        "location": "\u05e9" * 255,
    }
    raw = _padded(body, 64 * KIB + 1)

    response = send(client, "POST", PATH, world.token("editor"), raw)

    assert response.status_code == 201, response.json_body
    stored = send(
        client, "GET", f"{PATH}/{response.json_body['data']['interaction']['id']}", world.token("editor")
    ).json_body["data"]["interaction"]
    assert {k: stored[k] for k in ("title", "description", "notes", "location")} == {
        k: body[k] for k in ("title", "description", "notes", "location")
    }


def test_a_body_of_64_kib_plus_one_with_an_over_long_field_is_400_naming_it(client, world):
    before = fingerprint()
    raw = _padded({**VALID, "description": "x" * (60 * KIB)}, 64 * KIB + 1)
    assert len(raw.encode()) == 64 * KIB + 1

    response = send(client, "POST", PATH, world.token("editor"), raw)

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in response.json_body["error"]["details"]] == ["description"]
    assert fingerprint() == before


def test_every_over_long_field_is_reported_at_once(client, world):
    body = {
        **VALID,
        "title": "t" * 256,
        "lead": "l" * 101,
        "location": "o" * 256,
        "description": "d" * 10_001,
        "notes": "n" * 10_001,
    }

    response = send(client, "POST", PATH, world.token("editor"), body)

    assert response.status_code == 400
    assert {d["field"] for d in response.json_body["error"]["details"]} == {
        "title",
        "lead",
        "location",
        "description",
        "notes",
    }


# --- structure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_in_a_field_is_400(client, world, depth):
    before = fingerprint()
    raw = json.dumps(_without("notes"))[:-1] + ', "notes": ' + "[" * depth + "]" * depth + "}"

    response = send(client, "POST", PATH, world.token("editor"), raw)

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert fingerprint() == before


def _assert_400_everywhere_and_nothing_written(client, world, raw) -> None:
    """The raw body is a 400 on every endpoint that reads a body, and changes nothing."""
    row = _one_interaction(client, world)
    before = fingerprint()
    for method, path, token in [
        ("POST", PATH, world.token("editor")),
        ("PUT", f"{PATH}/{row}", world.token("editor")),
        ("POST", "/api/auth/login", None),
        ("POST", "/api/auth/site", world.token("admin")),
    ]:
        assert _error(send(client, method, path, token, raw)) == (400, "VALIDATION_ERROR"), path
    assert fingerprint() == before


@pytest.mark.parametrize("opening, closing, depth", [("[", "]", 100_000), ('{"a":', "}", 40_000)])
def test_a_deeply_nested_body_is_400_on_every_endpoint(client, world, opening, closing, depth):
    raw = opening * depth + "1" + closing * depth
    assert len(raw) < MAX_BODY_BYTES
    _assert_400_everywhere_and_nothing_written(client, world, raw)


def test_a_huge_array_in_a_field_is_400(client, world):
    before = fingerprint()
    raw = json.dumps({**VALID, "title": [0] * 80_000})
    assert len(raw) < MAX_BODY_BYTES

    response = send(client, "POST", PATH, world.token("editor"), raw)

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert "title" in {d["field"] for d in response.json_body["error"]["details"]}
    assert fingerprint() == before


def test_many_unknown_fields_are_400(client, world):
    before = fingerprint()
    body = {**VALID, **{f"f{i}": i for i in range(10_000)}}

    response = send(client, "POST", PATH, world.token("editor"), body)

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert fingerprint() == before


@pytest.mark.parametrize("raw", ["[]", "[1, 2]", "null", "1", '"text"', "true", "", "   "])
def test_a_body_that_is_not_an_object_is_400(client, world, raw):
    before = fingerprint()
    for method, path, token in [
        ("POST", PATH, world.token("editor")),
        ("POST", "/api/auth/login", None),
        ("POST", "/api/auth/site", world.token("admin")),
    ]:
        response = send(client, method, path, token, raw, **{"Content-Type": "application/json"})
        assert _error(response) == (400, "VALIDATION_ERROR"), (path, raw)
    assert fingerprint() == before


@pytest.mark.parametrize(
    "raw",
    [
        '{"title": NaN}',
        '{"title": Infinity}',
        '{"site_id": -Infinity}',
        '{"title": "x",}',
        "{'title': 'x'}",
        '{"title": "x"',
        '{"a": 1}{"b": 2}',
    ],
)
def test_json_that_is_not_strict_json_is_400(client, world, raw):
    for method, path, token in [
        ("POST", PATH, world.token("editor")),
        ("POST", "/api/auth/site", world.token("admin")),
    ]:
        assert _error(send(client, method, path, token, raw)) == (400, "VALIDATION_ERROR"), raw


def test_a_number_with_thousands_of_digits_is_400_not_500(client, world):
    raw = '{"site_id": ' + "9" * 5000 + "}"
    assert _error(send(client, "POST", "/api/auth/site", world.token("admin"), raw)) == (
        400,
        "VALIDATION_ERROR",
    )
    raw = json.dumps(_without("title"))[:-1] + ', "title": ' + "9" * 5000 + "}"
    assert _error(send(client, "POST", PATH, world.token("editor"), raw)) == (400, "VALIDATION_ERROR")


# --- NUL and encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["title", "lead", "location", "description", "notes", "timezone", "type", "start_datetime"]
)
def test_a_nul_character_in_a_field_is_400_naming_it(client, world, field):
    before = fingerprint()
    value = (VALID[field] or "x") + "\u0000tail"

    response = send(client, "POST", PATH, world.token("editor"), {**VALID, field: value})

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert field in {d["field"] for d in response.json_body["error"]["details"]}
    assert fingerprint() == before


def test_a_nul_character_in_an_update_is_400_and_changes_nothing(client, world):
    row = _one_interaction(client, world)
    before = fingerprint()

    response = send(client, "PUT", f"{PATH}/{row}", world.token("editor"), {"notes": "a\u0000b"})

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert fingerprint() == before


def test_a_raw_nul_byte_in_the_body_is_400(client, world):
    raw = json.dumps(VALID).replace("Client Meeting", "Client\x00Meeting").encode()
    assert _error(send(client, "POST", PATH, world.token("editor"), raw)) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "param",
    [
        "search",
        "title",
        "lead",
        "location",
        "type",
        "start_date",
        "end_date",
        "page",
        "per_page",
        "sort_by",
        "sort_direction",
    ],
)
def test_a_nul_character_in_a_query_parameter_is_400(client, world, param):
    response = send(client, "GET", f"{PATH}?{param}=a%00b", world.token("editor"))

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in response.json_body["error"]["details"]] == [param]


def test_a_nul_character_in_login_fields_is_a_refusal_not_a_500(client, world):
    for body in ({"username": "ed\u0000die", "password": "x"}, {"username": "eddie", "password": "p\u0000w"}):
        response = send(client, "POST", "/api/auth/login", None, body)
        assert response.status_code in (400, 401), response.json_body


def test_a_nul_or_control_character_in_the_idempotency_key_is_400(client, world):
    before = fingerprint()
    for key in ("a\x00b", "a\x1bb", "a\x7fb"):
        response = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": key})
        assert _error(response) == (400, "VALIDATION_ERROR")
        assert response.json_body["error"]["details"][0]["field"] == "Idempotency-Key"
    assert fingerprint() == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "\xff\xfe"}',
        b'{"title": "\xc0\xaf"}',  # an overlong encoding of "/"
        b'{"title": "\xed\xa0\x80"}',  # a UTF-8-encoded surrogate
        b'{"title": "caf\xe9"}',  # Latin-1, not UTF-8
        b'\xef\xbb\xbf{"title": "x"}',  # a byte order mark
    ],
)
def test_a_body_that_is_not_valid_utf8_is_400_on_every_endpoint(client, world, raw):
    _assert_400_everywhere_and_nothing_written(client, world, raw)


def test_an_escaped_lone_surrogate_is_400_naming_the_field(client, world):
    before = fingerprint()
    raw = json.dumps(_without("notes"))[:-1] + ', "notes": "\\ud800 alone"}'

    response = send(client, "POST", PATH, world.token("editor"), raw)

    assert _error(response) == (400, "VALIDATION_ERROR")
    assert "notes" in {d["field"] for d in response.json_body["error"]["details"]}
    assert fingerprint() == before


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
    ],
)
def test_a_body_without_a_json_content_type_is_415_and_writes_nothing(client, world, content_type):
    before = fingerprint()
    headers = {"Authorization": f"Bearer {world.token('editor')}"}
    if content_type:
        headers["Content-Type"] = content_type

    response = client.http.post(PATH, headers=headers, body=json.dumps(VALID))

    assert _error(response) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert fingerprint() == before


def _administration_writes(world) -> list[tuple[str, str, str | None]]:
    site, member = world.site_a, world.users["editor"]
    return [
        ("POST", "/api/sites", world.token("admin")),
        ("PUT", f"/api/sites/{site}", world.token("admin")),
        ("POST", f"/api/sites/{site}/invitations", world.token("admin")),
        ("PUT", f"/api/sites/{site}/users/{member}", world.token("admin")),
        ("DELETE", f"/api/sites/{site}/users/{member}", world.token("admin")),
        ("DELETE", f"/api/sites/{site}/invitations/1", world.token("admin")),
        ("POST", f"/api/sites/{site}/invitations/1/resend", world.token("admin")),
        ("POST", "/api/auth/invitations/preview", None),
        ("POST", "/api/auth/invitations/accept", None),
        ("POST", "/api/auth/password", world.token("editor")),
    ]


def test_the_administration_endpoints_refuse_256_kib_plus_one_and_other_media_types(client, world):
    before = fingerprint()
    huge = _padded({"name": "x"}, MAX_BODY_BYTES + 1)
    for method, path, token in _administration_writes(world):
        assert _error(send(client, method, path, token, huge)) == (413, "PAYLOAD_TOO_LARGE"), path
        headers = {"Content-Type": "text/plain"} | ({"Authorization": f"Bearer {token}"} if token else {})
        response = getattr(client.http, method.lower())(path, body='{"name": "x"}', headers=headers)
        assert _error(response) == (415, "UNSUPPORTED_MEDIA_TYPE"), path
    assert fingerprint() == before


@pytest.mark.parametrize("body", ["[]", "{", '"text"', "null", '{"role": "admin"' + ', "x": 1' * 3 + "}"])
def test_the_administration_endpoints_refuse_what_is_not_their_object(client, world, body):
    from tests.factories import make_platform_admin

    make_platform_admin("alice")  # else POST /api/sites is a 403, which comes first
    before = fingerprint()
    for method, path, token in _administration_writes(world):
        if method == "DELETE" or path.endswith("/resend"):
            continue  # they take no body
        assert _error(send(client, method, path, token, body)) == (400, "VALIDATION_ERROR"), (path, body)
    assert fingerprint() == before
