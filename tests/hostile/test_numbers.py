"""Ids and page numbers beyond 64 bits, negative, zero or oddly written: a 404 for ids (no such
resource), a 400 for parameters, a 403 for a site the caller is not a member of; never a 500."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import VALID, send

PATH = "/api/interactions"
BAD_IDS = [
    "0",
    "-1",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "1e3",
    "0x1",
    "01",
    "1.0",
    "%201",
    "1%20",
    "+1",
    "１",
    "NaN",
    "null",
    "true",
    "[1]",
]


@pytest.mark.parametrize("raw", BAD_IDS)
def test_an_impossible_interaction_id_is_404_for_every_method(client, world, raw):
    before = fingerprint()
    for method, body in (("GET", None), ("PUT", {"title": "x"}), ("DELETE", None)):
        response = send(client, method, f"{PATH}/{raw}", world.token("editor"), body)
        assert response.status_code == 404, (method, response.json_body)
        assert response.json_body["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert fingerprint() == before


def test_the_largest_int64_id_is_simply_not_found(client, world):
    response = send(client, "GET", f"{PATH}/9223372036854775807", world.token("editor"))
    assert response.status_code == 404


@pytest.mark.parametrize("raw", BAD_IDS + ["2147483648"])
def test_an_impossible_site_id_in_the_path_is_404(client, world, raw):
    for path in (f"/api/sites/{raw}", f"/api/sites/{raw}/users"):
        response = send(client, "GET", path, world.token("admin"))
        assert response.status_code == 404, (path, response.json_body)


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64, 2**200, -1, -(2**63), 0])
def test_selecting_an_impossible_site_is_403_not_a_member(client, world, value):
    response = send(client, "POST", "/api/auth/site", world.token("admin"), {"site_id": value})

    assert response.status_code == 403, response.json_body
    assert response.json_body["error"]["code"] == "AUTHORIZATION_ERROR"


@pytest.mark.parametrize("value", ["1", 1.0, 1.5, True, None, [1], {"id": 1}, "1e3"])
def test_a_site_id_that_is_not_an_integer_is_400(client, world, value):
    response = send(client, "POST", "/api/auth/site", world.token("admin"), {"site_id": value})

    assert response.status_code == 400, response.json_body


@pytest.mark.parametrize("param", ["page", "per_page"])
@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1",
        "18446744073709551616",
        "9223372036854775808",
        "99999999999999999999999999",
        "1e2",
        "1.5",
        "0x10",
        "",
        "%20",
        "abc",
    ],
)
def test_an_out_of_range_page_parameter_is_400(client, world, param, raw):
    response = send(client, "GET", f"{PATH}?{param}={raw}", world.token("editor"))

    assert response.status_code == 400, response.json_body
    assert [d["field"] for d in response.json_body["error"]["details"]] == [param]


def test_the_largest_page_is_past_the_depth_limit_a_400_naming_page(client, world):
    send(client, "POST", PATH, world.token("editor"), VALID)

    response = send(client, "GET", f"{PATH}?page=2147483647&per_page=100", world.token("editor"))

    assert response.status_code == 400, response.json_body
    assert [d["field"] for d in response.json_body["error"]["details"]] == ["page"]
    assert "cursor" in response.json_body["error"]["details"][0]["message"]


def test_server_owned_numbers_beyond_64_bits_are_ignored(client, world):
    body = {**VALID, "id": 2**70, "site_id": -(2**70), "version": 2**64, "created_by": 10**30}

    response = send(client, "POST", PATH, world.token("editor"), body)

    assert response.status_code == 201, response.json_body
    created = response.json_body["data"]["interaction"]
    assert (created["site_id"], created["version"]) == (world.site_a, 1)


@pytest.mark.parametrize(
    "header",
    [
        '"18446744073709551616"',
        '"-1"',
        '"0"',
        '"1.0"',
        '"01"',
        "1",
        'W/"1"',
        '"1", W/"2"x',
        '"' + "9" * 1000 + '"',
    ],
)
def test_an_impossible_if_match_is_412_and_changes_nothing(client, world, header):
    row = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    before = fingerprint()

    put = send(
        client, "PUT", f"{PATH}/{row['id']}", world.token("editor"), {"title": "x"}, **{"If-Match": header}
    )
    delete = send(client, "DELETE", f"{PATH}/{row['id']}", world.token("editor"), **{"If-Match": header})

    assert (put.status_code, delete.status_code) == (412, 412)
    assert fingerprint() == before
