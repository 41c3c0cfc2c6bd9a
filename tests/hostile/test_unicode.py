"""Right-to-left, combining, invisible and astral characters are valid text: stored and returned
exactly as sent (no normalisation), counted in characters, and found by a search for the same
characters — except that names (titles, leads, locations) refuse the control, bidirectional and
invisible characters that deceive a reader (tests/hostile/test_names.py): such text is kept in
descriptions and notes."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.interactions.helpers import VALID, send

PATH = "/api/interactions"

TRICKY = {
    "rtl_override": "invoice\u202egpj.exe\u202c",
    "hebrew_arabic": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 mixed",
    "rtl_marks": "\u200fRLM\u200e LRM \u2067isolate\u2069",
    "combining": "Cafe\u0301 Zalgo: Z\u0351\u0358\u0363A\u0311\u0350L\u0346G\u036aO\u0364",
    "decomposed_vs_precomposed": "e\u0301 \u00e9",
    "zero_width": "zero\u200bwidth\u200djoiner\u2060word",
    "emoji_sequences": "\U0001f469\u200d\U0001f4bb \U0001f44d\U0001f3fd \U0001f1eb\U0001f1f7",
    "astral": "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U00020000",
    "bom_inside": "before\ufeffafter",
    "line_separators": "one\u2028two\u2029three",
    "private_use_and_nonchars": "\ue000\uf8ff\ufffd",
    "quotes_and_backslashes": "\"quoted\" 'single' \\back\\slash\\ `tick`",
}
# What names refuse (bidirectional controls, zero-width and other invisible characters).
NOT_IN_NAMES = {"rtl_override", "rtl_marks", "zero_width", "bom_inside"}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_text_is_stored_and_returned_exactly_as_sent(client, world, name):
    value = TRICKY[name]
    names = {} if name in NOT_IN_NAMES else {"title": value, "lead": value[:100], "location": value}
    body = {**VALID, **names, "description": value, "notes": value}

    created = send(client, "POST", PATH, world.token("editor"), body)

    assert created.status_code == 201, created.json_body
    fetched = send(
        client, "GET", f"{PATH}/{created.json_body['data']['interaction']['id']}", world.token("editor")
    ).json_body["data"]["interaction"]
    for field in ("title", "lead", "location", "description", "notes"):
        assert fetched[field] == body[field], field


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_text_is_found_by_searching_for_the_same_characters(client, world, name):
    # A search term needs three ASCII letters or digits in a row: "ref" gives every value one.
    value = TRICKY[name]
    target = send(client, "POST", PATH, world.token("editor"), {**VALID, "description": f"x ref{value}"})
    send(client, "POST", PATH, world.token("editor"), {**VALID, "description": "Plain ref"})
    target_id = target.json_body["data"]["interaction"]["id"]

    response = send(client, "GET", f"{PATH}?search={quote('ref' + value, safe='')}", world.token("editor"))

    assert response.status_code == 200, response.json_body
    assert [row["id"] for row in response.json_body["data"]["interactions"]] == [target_id]


@pytest.mark.parametrize(
    "name", ["decomposed_vs_precomposed", "emoji_sequences", "astral", "private_use_and_nonchars"]
)
def test_tricky_text_without_three_ascii_letters_in_a_row_is_not_a_search_term(client, world, name):
    # Mathematical letters (astral) and accented letters count as letters to Python, but not to the
    # trigram index of a database whose LC_CTYPE is C: the rule counts what every database counts.
    response = send(client, "GET", f"{PATH}?search={quote(TRICKY[name], safe='')}", world.token("editor"))

    assert response.status_code == 400, response.json_body
    assert [d["field"] for d in response.json_body["error"]["details"]] == ["search"]


def test_decomposed_and_precomposed_forms_are_different_text(client, world):
    decomposed = send(client, "POST", PATH, world.token("editor"), {**VALID, "title": "Cafe\u0301"})
    precomposed = send(client, "POST", PATH, world.token("editor"), {**VALID, "title": "Caf\u00e9"})

    wanted = quote("Caf\u00e9")
    response = send(client, "GET", f"{PATH}?title={wanted}", world.token("editor"))

    assert [r["id"] for r in response.json_body["data"]["interactions"]] == [
        precomposed.json_body["data"]["interaction"]["id"]
    ]
    assert decomposed.json_body["data"]["interaction"]["title"] == "Cafe\u0301"


@pytest.mark.parametrize("char", ["\U0001f600", "e\u0301"[1], "\u05e9", "\u4e2d"])
def test_length_limits_count_characters_not_bytes(client, world, char):
    at_limit = send(client, "POST", PATH, world.token("editor"), {**VALID, "title": char * 255})
    over = send(client, "POST", PATH, world.token("editor"), {**VALID, "title": char * 256})

    assert at_limit.status_code == 201, at_limit.json_body
    assert at_limit.json_body["data"]["interaction"]["title"] == char * 255
    assert over.status_code == 400
    assert [d["field"] for d in over.json_body["error"]["details"]] == ["title"]


def test_a_title_of_only_invisible_characters_is_refused_for_them(client, world):
    """Zero-width characters are not whitespace (such a title is not blank), and a name may not
    hold them: the 400 names the character."""
    response = send(client, "POST", PATH, world.token("editor"), {**VALID, "title": "\u200b\u200d"})

    assert response.status_code == 400
    [detail] = response.json_body["error"]["details"]
    assert detail["field"] == "title" and "U+200B" in detail["message"]


def test_unicode_whitespace_around_a_title_is_trimmed(client, world):
    response = send(
        client, "POST", PATH, world.token("editor"), {**VALID, "title": "\u3000\u00a0 Title \u2003"}
    )

    assert response.status_code == 201
    assert response.json_body["data"]["interaction"]["title"] == "Title"


def test_tricky_text_in_an_update_is_stored_exactly(client, world):
    row = send(client, "POST", PATH, world.token("editor"), VALID).json_body["data"]["interaction"]
    value = TRICKY["rtl_override"] + TRICKY["combining"]

    response = send(
        client,
        "PUT",
        f"{PATH}/{row['id']}",
        world.token("editor"),
        {"title": TRICKY["combining"], "notes": value},
    )

    assert response.status_code == 200
    assert response.json_body["data"]["interaction"]["title"] == TRICKY["combining"]
    assert response.json_body["data"]["interaction"]["notes"] == value


def test_a_unicode_username_that_does_not_exist_is_an_ordinary_failed_login(client, world):
    for username in (TRICKY["rtl_override"], TRICKY["combining"][:60], "\U0001f600" * 64):
        response = send(client, "POST", "/api/auth/login", None, {"username": username, "password": "x" * 12})
        assert response.status_code == 401, response.json_body
