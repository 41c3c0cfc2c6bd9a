"""Usernames: new ones are 3-64 characters of A-Z a-z 0-9 . _ -; every lookup folds case one way
(ASCII letters only) in Python, in SQL and in the lockout key, so the login, the CLI and the unique
index always agree; an older account with other characters still logs in by its exact name."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Text, literal_column, select, text

from chalicelib.db import session_scope
from chalicelib.kit import usernames
from chalicelib.models import User
from tests.factories import PASSWORD, make_site, make_user, post_json
from tests.test_cli import assert_one_line_failure, run


def _login(client, username, password=PASSWORD):
    return post_json(client, "/api/auth/login", {"username": username, "password": password})


# --- the rule for new names ------------------------------------------------------------------------

ACCEPTED = ["abc", "jdoe", "J.Doe", "ana_lima-2", "007", "a" * 64, "...", "-_-"]
REFUSED = [
    "",
    "ab",
    "a" * 65,
    " jdoe",
    "jdoe ",
    "j doe",
    "jdoe\n",
    "İlker",
    "ΣΟΣ",
    "Müller",
    "ｊｄｏｅ",
    "jdoe@example.com",
    "jdoe+1",
    "j'doe",
    "jdoe\x00",
    "١٢٣",
    "ab\u0301",
]


class _Member(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    username: usernames.NewUsername


@pytest.mark.parametrize("name", ACCEPTED)
def test_a_new_username_of_the_allowed_characters_is_accepted_as_is(name):
    assert usernames.check_new(name) == name
    assert _Member.model_validate({"username": name}).username == name


@pytest.mark.parametrize("name", REFUSED)
def test_any_other_new_username_is_refused_in_our_words(name):
    with pytest.raises(ValueError, match="^must be 3-64 characters of A-Z, a-z, 0-9"):
        usernames.check_new(name)
    with pytest.raises(ValidationError) as caught:
        _Member.model_validate({"username": name})
    assert [e["loc"] for e in caught.value.errors()] == [("username",)]


def test_the_schema_type_documents_the_rule():
    schema = _Member.model_json_schema()["properties"]["username"]
    assert (schema["pattern"], schema["minLength"], schema["maxLength"]) == (usernames.PATTERN, 3, 64)


# --- one fold everywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,key",
    [
        ("JDoe", "jdoe"),
        ("  JDOE ", "jdoe"),
        ("İlker", "İlker"),
        ("İLKER", "İlker"),
        ("ΣΟΣ", "ΣΟΣ"),
        ("Émile", "Émile"),
        ("K", "k"),
        ("\u212a", "\u212a"),  # the Kelvin sign is not a K
    ],
)
def test_fold_lowercases_ascii_letters_only(typed, key):
    assert usernames.fold(typed) == key


def test_the_sql_fold_is_the_python_fold_for_every_character(session):
    """Every code point of the Basic Multilingual Plane (surrogates aside) and some beyond, between
    two letters (so that trimming plays no part), folded by `folded()` in PostgreSQL and by `fold()`
    in Python: identical, whatever the database's locale."""
    points = [*range(1, 0xD800), *range(0xE000, 0x10000), 0x1D518, 0x1F469, 0x10FFFF]
    rows = session.execute(
        select(
            literal_column("cp"), usernames.folded(literal_column("('X' || chr(cp) || 'X')", Text))
        ).select_from(text("unnest(CAST(:points AS int[])) AS cp")),
        {"points": points},
    ).all()
    assert len(rows) == len(points)
    assert [hex(cp) for cp, value in rows if value != usernames.fold(f"X{chr(cp)}X")] == []


def test_the_lookup_is_the_expression_of_the_unique_index(session):
    make_user("jdoe")
    session.execute(text("SET LOCAL enable_seqscan = off"))
    statement = select(User.id).where(usernames.same_name(User.username, "JDOE"))
    compiled = statement.compile(compile_kwargs={"literal_binds": True})
    plan = "\n".join(row[0] for row in session.execute(text(f"EXPLAIN {compiled}")))
    assert "uq_users_username_folded" in plan, plan
    assert session.scalars(statement).all() != []


# --- logins ----------------------------------------------------------------------------------------


def test_a_name_of_the_rule_logs_in_in_any_case(client):
    make_user("J.Doe_1")
    for typed in ("J.Doe_1", "j.doe_1", "J.DOE_1", " j.DoE_1 "):
        assert _login(client, typed).status_code == 200, typed


@pytest.mark.parametrize(
    "stored,same,different",
    [
        ("İlker", ["İlker", "İLKER"], ["ilker", "i\u0307lker", "ILKER"]),
        ("ΣΟΣ", ["ΣΟΣ"], ["σοσ", "σος", "Σοσ"]),
        ("Émile", ["Émile", "ÉMILE"], ["émile", "Emile"]),
    ],
)
def test_an_older_name_outside_the_rule_logs_in_by_its_exact_name(client, stored, same, different):
    make_user(stored, email="older@example.com")
    for typed in same:
        response = _login(client, typed)
        assert response.status_code == 200, typed
        assert response.json_body["data"]["user"]["username"] == stored
    for typed in different:
        response = _login(client, typed)
        assert response.status_code == 401, typed
        assert response.json_body["error"]["code"] == "AUTHENTICATION_ERROR"


def test_a_name_that_only_a_locale_would_fold_together_is_another_account(client):
    older = make_user("İlker", email="older@example.com")
    newer = make_user("ilker", email="newer@example.com")
    assert _login(client, "İlker").json_body["data"]["user"]["id"] == older
    assert _login(client, "ILKER").json_body["data"]["user"]["id"] == newer


def test_the_login_body_takes_any_name_up_to_64_characters(client):
    make_user("jdoe")
    for typed in ("x", "ab", "名前", "a b", "x" * 64):
        response = _login(client, typed)
        assert response.status_code == 401, typed
    assert _login(client, "x" * 65).status_code == 400


def test_every_spelling_of_one_account_shares_its_lockout(client):
    make_user("İlker", email="older@example.com")
    for typed in ("İlker", "İLKER", "İlKeR", " İlker", "İLKER"):
        assert _login(client, typed, "wrong password").status_code == 401
    response = _login(client, "İlker")
    assert response.status_code == 429
    assert response.json_body["error"]["code"] == "ACCOUNT_LOCKED"


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["İlker", "ΣΟΣ", "ab", "j doe", "a" * 65, "jdoe+1"])
def test_create_user_refuses_a_name_outside_the_rule(capsys, monkeypatch, name):
    code, out, err = run(
        capsys,
        "create-user",
        name,
        "x@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert_one_line_failure(code, err)
    assert "must be 3-64 characters of A-Z, a-z, 0-9" in err
    with session_scope() as s:
        assert s.scalars(select(User)).all() == []


def test_create_user_beside_an_older_name_a_locale_would_fold_together(capsys, monkeypatch, client):
    make_user("İlker", email="older@example.com")
    code, out, err = run(
        capsys,
        "create-user",
        "ilker",
        "ilker@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    assert _login(client, "ilker").json_body["data"]["user"]["id"] == int(out)


def test_create_user_refuses_another_case_of_an_existing_name(capsys, monkeypatch):
    make_user("J.Doe")
    code, out, err = run(
        capsys,
        "create-user",
        "j.DOE",
        "other@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    assert_one_line_failure(code, err)
    assert "already exists" in err


def test_cli_commands_find_an_older_name_by_its_exact_spelling(capsys, client):
    make_site("Marketing")
    make_user("İlker", email="older@example.com")
    code, out, err = run(capsys, "grant", "İlker", "Marketing", "editor")
    assert code == 0, err
    assert out.strip() == "İlker is editor of Marketing"
    code, _out, err = run(capsys, "grant", "ilker", "Marketing", "editor")
    assert_one_line_failure(code, err)
    assert "no user named 'ilker'" in err


def test_cli_unlock_lifts_the_lock_of_every_spelling(capsys, client):
    make_user("JDoe")
    for _ in range(5):
        _login(client, "JDOE", "wrong password")
    assert _login(client, "jdoe").status_code == 429
    assert run(capsys, "unlock", " jDOE")[0] == 0
    assert _login(client, "JDoe").status_code == 200
