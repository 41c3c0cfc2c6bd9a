"""Search in every script the database can index: the term rule comes from what the database's
LC_CTYPE makes pg_trgm count as word characters (probed once per container and database). On a
UTF-8 LC_CTYPE (the test database's, as RDS's) Han, Greek, Polish and Hebrew terms are accepted and
found case-insensitively; on a C LC_CTYPE only ASCII letters and digits count, and they are refused."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from chalicelib.db import session_scope
from chalicelib.interactions import terms
from tests.environment import TEST_DATABASE
from tests.factories import make_site, make_user
from tests.interactions.helpers import error, insert_rows, send, token_for

ROOT = terms.__file__.rsplit("/chalicelib/", 1)[0]
SCRIPT_TERMS = {"Han": "東京都", "Greek": "Σοφία", "Polish": "Łódź", "Hebrew": "שלום"}


def test_the_probe_finds_the_sampled_scripts_on_a_utf8_database():
    with session_scope() as session:
        ctype = session.execute(text("SELECT datctype FROM pg_database WHERE datname = current_database()"))
        assert "utf" in ctype.scalar_one().lower()
        scripts = terms.scripts_of(session)
    assert {"LATIN", "GREEK", "CJK", "HEBREW", "CYRILLIC", "ARABIC"} <= scripts


def test_the_probe_runs_once_per_database(monkeypatch):
    terms._probed.clear()
    calls = []
    with session_scope() as session:
        real = session.execute

        def counting(statement, *args, **kwargs):
            calls.append(statement)
            return real(statement, *args, **kwargs)

        monkeypatch.setattr(session, "execute", counting)
        first = terms.scripts_of(session)
        again = terms.scripts_of(session)
    assert first == again and calls == [terms.PROBE]


@pytest.mark.parametrize("term", SCRIPT_TERMS.values(), ids=SCRIPT_TERMS.keys())
def test_a_term_of_each_script_is_accepted_where_its_letters_are_word_characters(term):
    utf8 = terms.indexed_scripts(terms.SAMPLE)
    assert terms.has_indexable_run(term, utf8)
    assert not terms.has_indexable_run(term, frozenset())  # LC_CTYPE C: none of them counts


def test_characters_of_scripts_outside_the_sample_never_count():
    everything = terms.indexed_scripts(terms.SAMPLE)
    for term in ("²³¹", "½½½", "\U0001d518\U0001d52b\U0001d526", "e\u0301e\u0301e\u0301", "★★★"):
        assert not terms.has_indexable_run(term, everything), term


def test_a_script_counts_only_when_all_its_samples_are_word_characters():
    greek = "".join(c for c in terms.SAMPLE if terms.script(c) == "GREEK")
    assert "GREEK" in terms.indexed_scripts(greek)
    assert "GREEK" not in terms.indexed_scripts(greek[1:])


@pytest.mark.parametrize("term", SCRIPT_TERMS.values(), ids=SCRIPT_TERMS.keys())
def test_a_term_of_each_script_is_searched_case_insensitively(client, term):
    site = make_site("Marketing")
    user = make_user("vera", sites={site: "viewer"})
    wanted, _other = insert_rows(site, [{"title": f"Visit {term.upper()} office"}, {"title": "Plain"}])
    for sent in (term, term.lower(), term.upper()):
        response = send(client, "GET", f"/api/interactions?search={quote(sent)}", token_for(user, site))
        assert response.status_code == 200, response.json_body
        assert [row["id"] for row in response.json_body["data"]["interactions"]] == [wanted]


# --- a database whose LC_CTYPE is C ------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_database():
    """A database on the test server with LC_CTYPE (and LC_COLLATE) C, built by the migrations."""
    admin = create_engine(os.environ["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    name = f"{TEST_DATABASE}_c"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(
            text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LC_CTYPE 'C' LC_COLLATE 'C'")
        )
    url = make_url(os.environ["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    config = Config(f"{ROOT}/alembic.ini")
    config.set_main_option("script_location", f"{ROOT}/migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_under_lc_ctype_c_the_probe_finds_no_script_beyond_ascii(c_database):
    engine = create_engine(c_database)
    try:
        with Session(engine) as session:
            assert terms.scripts_of(session) == frozenset()
    finally:
        engine.dispose()


def test_under_lc_ctype_c_only_ascii_runs_are_accepted(client, c_database, reconfigure):
    reconfigure(DATABASE_URL=c_database)
    site = make_site("Marketing")
    user = make_user("vera", sites={site: "viewer"})
    wanted, _other = insert_rows(
        site, [{"title": "Łódź office, 東京都 visit with Σοφία and שלום"}, {"title": "x"}]
    )
    token = token_for(user, site)
    for term in SCRIPT_TERMS.values():
        response = send(client, "GET", f"/api/interactions?search={quote(term)}", token)
        assert error(response) == (400, "VALIDATION_ERROR"), term
        assert response.json_body["error"]["details"] == [
            {
                "field": "search",
                "message": "must contain at least three letters or digits in a row (A-Z, a-z, 0-9), "
                "or be empty for no filter",
            }
        ]
    # ASCII letters beside them still make a searchable term.
    response = send(client, "GET", f"/api/interactions?search={quote('Łódź office')}", token)
    assert [row["id"] for row in response.json_body["data"]["interactions"]] == [wanted]
