"""Error bodies in our own words, and times in ASCII digits only.

A number of thousands of digits in a JSON body (Python's int conversion limit) and a body starting
with a UTF-8 byte order mark used to answer with Python's advice ("use sys.set_int_max_str_digits()",
"decode using utf-8-sig"); every hostile test now checks each error it gets for such words
(conftest.py). Dates and datetimes take ASCII digits only: Arabic-Indic or fullwidth digits, which
Python's int() would read, are a 400 naming the field, and nothing is written.
"""

from __future__ import annotations

import json

import pytest

from tests.hostile.conftest import LIBRARY_WORDS, error_messages, fingerprint
from tests.interactions.helpers import VALID, send

PATH = "/api/interactions"
TOO_MANY_DIGITS = "Malformed JSON body: a number has too many digits"
BOM = "Malformed JSON body: it must not start with a byte order mark"


def _without(key):
    """VALID without `key`, which the test appends itself (a key given twice is a 400 of its own)."""
    return {k: v for k, v in VALID.items() if k != key}


def _only_error(response, field=None):
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_ERROR"
    if field is not None:
        assert [d["field"] for d in response.json_body["error"]["details"]] == [field]
    return response.json_body["error"]


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 5000, "1" + "0" * 4300])
def test_a_number_beyond_pythons_digit_limit_is_400_in_our_words_everywhere(client, world, number):
    row = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    before = fingerprint()
    for method, path, token, raw in [
        ("POST", PATH, world.token("editor"), json.dumps(VALID)[:-1] + f', "title": {number}}}'),
        ("POST", PATH, world.token("editor"), json.dumps(VALID)[:-1] + f', "notes": [[{number}]]}}'),
        ("PUT", f"{PATH}/{row['id']}", world.token("editor"), f'{{"title": {number}}}'),
        ("POST", "/api/auth/site", world.token("admin"), f'{{"site_id": {number}}}'),
        ("POST", "/api/auth/login", None, f'{{"username": "jdoe", "password": {number}}}'),
    ]:
        error = _only_error(send(client, method, path, token, raw))
        assert error["message"] == TOO_MANY_DIGITS, (path, error)
        assert "details" not in error
    assert fingerprint() == before


def test_a_number_just_within_pythons_digit_limit_is_judged_by_the_field_rules(client, world):
    raw = json.dumps(_without("title"))[:-1] + ', "title": ' + "9" * 4000 + "}"
    error = _only_error(send(client, "POST", PATH, world.token("editor"), raw), "title")
    assert error["details"][0]["message"] == "Input should be a valid string"


@pytest.mark.parametrize("raw", ["\ufeff" + json.dumps(VALID), "\ufeff\ufeff{}", "\ufeff"])
def test_a_body_starting_with_a_byte_order_mark_is_400_in_our_words_everywhere(client, world, raw):
    row = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    before = fingerprint()
    for method, path, token in [
        ("POST", PATH, world.token("editor")),
        ("PUT", f"{PATH}/{row['id']}", world.token("editor")),
        ("POST", "/api/auth/site", world.token("admin")),
        ("POST", "/api/auth/login", None),
    ]:
        error = _only_error(send(client, method, path, token, raw.encode("utf-8")))
        assert error["message"] == BOM, (path, error)
    assert fingerprint() == before


def test_the_words_check_catches_pythons_own_advice():
    """The check every hostile test runs (conftest.py) would have caught the old messages."""
    for old in [
        "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits;"
        " use sys.set_int_max_str_digits() to increase the limit",
        "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
        "JSONDecodeError: Expecting value",
        "invalid literal for int() with base 10",
    ]:
        assert LIBRARY_WORDS.search(old), old
    for ours in [
        TOO_MANY_DIGITS,
        BOM,
        "The request body is not valid UTF-8",
        "Malformed JSON body: a value was expected (line 1, column 2)",
        "must be an ISO 8601 date and time (e.g. 2024-05-01T14:00:00-04:00)",
    ]:
        assert not LIBRARY_WORDS.search(ours), ours


def test_the_words_check_sees_every_error_answer(client, world):
    response = send(client, "POST", PATH, world.token("editor"), '{"title": ' + "9" * 5000 + "}")
    assert client.http.responses[-1] is response
    assert error_messages(response) == [TOO_MANY_DIGITS]


# --- ASCII digits only ------------------------------------------------------------------------------

ARABIC_INDIC = "٢٠٢٤-٠١-٠١T١٠:٠٠:٠٠Z"
NOT_ASCII_DATETIMES = [
    ARABIC_INDIC,
    "２０２４-０１-０１T１０:００:００Z",  # fullwidth
    "2024-01-01T10:00:00+０２:００",  # fullwidth offset
    "2024-01-0١T10:00:00Z",  # one Arabic-Indic digit
    "२०२४-०१-०१T१०:००:००",  # Devanagari, local time
    "2024-01-01T10:00:00.１２３Z",  # fullwidth fraction
    "2024-01-01T10:00:00\uff3a",  # fullwidth Z
]
NOT_ASCII_DATES = [
    "２０２４-０１-０１",
    "٢٠٢٤-٠١-٠١",
    "2024-01-0１",
    "２０２４-０１-０１T００:００:００Z",
    "2024-01-01T00:00:00+٠٢:٠٠",
    "𝟐𝟎𝟐𝟒-𝟎𝟏-𝟎𝟏",
]


@pytest.mark.parametrize("value", NOT_ASCII_DATETIMES)
@pytest.mark.parametrize("field", ["start_datetime", "end_datetime"])
def test_a_datetime_with_other_digits_is_400_naming_it_and_writes_nothing(client, world, field, value):
    row = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    before = fingerprint()

    created = send(client, "POST", PATH, world.token("editor"), {**VALID, field: value})
    updated = send(client, "PUT", f"{PATH}/{row['id']}", world.token("editor"), {field: value})

    for response in (created, updated):
        error = _only_error(response, field)
        assert error["details"][0]["message"].startswith("must be an ISO 8601 date and time")
    assert fingerprint() == before


@pytest.mark.parametrize("value", NOT_ASCII_DATES)
@pytest.mark.parametrize("param", ["start_date", "end_date"])
def test_a_date_filter_with_other_digits_is_400_naming_it(client, world, param, value):
    from urllib.parse import quote

    response = send(client, "GET", f"{PATH}?{param}={quote(value)}", world.token("editor"))

    _only_error(response, param)


def test_the_same_times_in_ascii_digits_are_accepted(client, world):
    created = send(
        client,
        "POST",
        PATH,
        world.token("editor"),
        {**VALID, "start_datetime": "2024-01-01T10:00:00Z", "end_datetime": "2024-01-01T10:00:00+00:00"},
    )
    assert created.status_code == 201, created.json_body
    listed = send(client, "GET", f"{PATH}?start_date=2024-01-01&end_date=2024-01-01", world.token("editor"))
    assert [r["id"] for r in listed.json_body["data"]["interactions"]] == [
        created.json_body["data"]["interaction"]["id"]
    ]
