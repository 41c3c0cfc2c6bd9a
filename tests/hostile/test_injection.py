"""SQL injection in every string field and every query parameter: text fields store the string
exactly as sent and find it literally; constrained fields answer 400 and write nothing; nothing is
ever executed (no delay, no 500, every table intact)."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest

from tests.hostile.conftest import SQL_INJECTION, fingerprint
from tests.interactions.helpers import VALID, send
from tests.support import refusal

PATH = "/api/interactions"
TEXT_FIELDS = {"title": 255, "lead": 100, "location": 255, "description": 10_000, "notes": 10_000}
CONSTRAINED_FIELDS = ["type", "timezone", "start_datetime", "end_datetime"]
TEXT_FILTERS = ["search", "title", "lead", "location"]
CONSTRAINED_PARAMS = ["type", "start_date", "end_date", "page", "per_page", "sort_by", "sort_direction"]

ids = [f"p{i}" for i in range(len(SQL_INJECTION))]


def _fast(started: float) -> None:
    # A payload that ran would sleep 10 s (or hit the 5 s statement timeout); the margin absorbs a
    # loaded machine's argon2 time.
    assert time.perf_counter() - started < 4.5, "a pg_sleep payload must never run"


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_every_text_field_is_stored_exactly_as_sent(client, world, payload):
    body = {**VALID, **{name: payload for name in TEXT_FIELDS}}
    started = time.perf_counter()
    response = send(client, "POST", PATH, world.token("editor"), body)
    _fast(started)

    assert response.status_code == 201, response.json_body
    created = response.json_body["data"]["interaction"]
    fetched = send(client, "GET", f"{PATH}/{created['id']}", world.token("editor")).json_body["data"][
        "interaction"
    ]
    for name in TEXT_FIELDS:
        assert created[name] == fetched[name] == payload


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_an_update_is_stored_exactly_as_sent(client, world, payload):
    created = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]

    response = send(
        client,
        "PUT",
        f"{PATH}/{created['id']}",
        world.token("editor"),
        {name: payload for name in TEXT_FIELDS},
    )

    assert response.status_code == 200, response.json_body
    assert all(response.json_body["data"]["interaction"][name] == payload for name in TEXT_FIELDS)


@pytest.mark.parametrize("field", CONSTRAINED_FIELDS)
def test_injection_in_a_constrained_field_is_400_and_writes_nothing(client, world, field):
    before = fingerprint()
    for payload in SQL_INJECTION:
        started = time.perf_counter()
        response = send(client, "POST", PATH, world.token("editor"), {**VALID, field: payload})
        _fast(started)

        assert response.status_code == 400, (payload, response.json_body)
        assert response.json_body["error"]["code"] == "VALIDATION_ERROR"
        assert field in {d["field"] for d in response.json_body["error"]["details"]}
    assert fingerprint() == before


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_text_filters_matches_literally(client, world, payload):
    # Payloads without three ASCII letters or digits in a row (`' OR '1'='1`, `%_\`) are refused by
    # the term rule; with a word in front they are searched for like any other term.
    term = payload if re.search("[A-Za-z0-9]{3}", payload) else f"inj {payload}"
    target = send(
        client,
        "POST",
        PATH,
        world.token("editor"),
        {**VALID, "title": f"before {term} after", "lead": term[:100], "location": term},
    ).json_body["data"]["interaction"]
    send(
        client,
        "POST",
        PATH,
        world.token("editor"),
        {**VALID, "title": "Plain", "lead": "Plain", "location": "Plain"},
    )
    send(client, "POST", PATH, world.token("other"), {**VALID, "title": term})  # another site

    for name in TEXT_FILTERS:
        started = time.perf_counter()
        response = send(client, "GET", f"{PATH}?{name}={quote(term, safe='')}", world.token("editor"))
        _fast(started)
        assert response.status_code == 200, (name, response.json_body)
        found = [row["id"] for row in response.json_body["data"]["interactions"]]
        assert found == [target["id"]], name


@pytest.mark.parametrize("payload", [p for p in SQL_INJECTION if not re.search("[A-Za-z0-9]{3}", p)])
def test_injection_without_a_searchable_word_is_400_naming_the_filter(client, world, payload):
    for name in TEXT_FILTERS:
        started = time.perf_counter()
        response = send(client, "GET", f"{PATH}?{name}={quote(payload, safe='')}", world.token("editor"))
        _fast(started)
        assert response.status_code == 400, (name, response.json_body)
        assert [d["field"] for d in response.json_body["error"]["details"]] == [name]


@pytest.mark.parametrize("param", CONSTRAINED_PARAMS)
def test_injection_in_a_constrained_query_parameter_is_400(client, world, param):
    before = fingerprint()
    for payload in SQL_INJECTION:
        response = send(client, "GET", f"{PATH}?{param}={quote(payload, safe='')}", world.token("editor"))

        assert response.status_code == 400, (payload, response.json_body)
        assert [d["field"] for d in response.json_body["error"]["details"]] == [param]
    assert fingerprint() == before


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_path_ids_is_404(client, world, payload):
    for method in ("GET", "PUT", "DELETE"):
        body = {"title": "x"} if method == "PUT" else None
        response = send(client, method, f"{PATH}/{quote(payload, safe='')}", world.token("editor"), body)
        assert response.status_code == 404, (method, response.json_body)
    for path in (f"/api/sites/{quote(payload, safe='')}", f"/api/sites/{quote(payload, safe='')}/users"):
        assert send(client, "GET", path, world.token("admin")).status_code == 404


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_the_if_match_header_is_412_and_changes_nothing(client, world, payload):
    created = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    before = fingerprint()

    put = send(
        client,
        "PUT",
        f"{PATH}/{created['id']}",
        world.token("editor"),
        {"title": "x"},
        **{"If-Match": payload},
    )
    delete = send(client, "DELETE", f"{PATH}/{created['id']}", world.token("editor"), **{"If-Match": payload})

    assert (put.status_code, delete.status_code) == (412, 412)
    assert fingerprint() == before


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_as_an_idempotency_key_is_just_a_key(client, world, payload):
    first = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": payload})
    again = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": payload})

    assert first.status_code == again.status_code == 201
    assert again.json_body == first.json_body


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_in_login_fields_is_an_ordinary_failed_login(client, world, payload):
    before = fingerprint()
    started = time.perf_counter()
    as_username = send(
        client, "POST", "/api/auth/login", None, {"username": payload[:64], "password": "whatever-password"}
    )
    as_password = send(client, "POST", "/api/auth/login", None, {"username": "eddie", "password": payload})
    _fast(started)

    assert as_username.status_code == 401, as_username.json_body
    assert as_password.status_code == 401, as_password.json_body
    assert refusal(as_username) == refusal(as_password)
    assert fingerprint() == before


@pytest.mark.parametrize("payload", SQL_INJECTION, ids=ids)
def test_injection_as_a_site_id_is_400(client, world, payload):
    response = send(client, "POST", "/api/auth/site", world.token("admin"), {"site_id": payload})

    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "site_id"
