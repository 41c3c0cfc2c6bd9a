"""Migration 0002's indexes serve every list query: search, each filter and each sort.

With sequential scans priced out (`enable_seqscan = off`) a plan still shows `Seq Scan on
interactions` when no index can answer the query, so these checks hold for a small test table as
for a big one. (At 1,000,000 rows with 200,000 in one site the planner picks the same indexes by
itself; see docs/api.md, Project decisions.)

A trigram index can also be *used* for a term it cannot answer: a pattern without a trigram makes
it return every row of the site (a full index scan). So for the terms the search rule accepts, the
checks run the count with EXPLAIN ANALYZE and require the trigram index to narrow the site's rows;
the same checks run on a second database whose LC_CTYPE classifies characters differently (C
against a UTF-8 locale), because pg_trgm takes its word characters from the database's LC_CTYPE.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import and_, create_engine, func, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from chalicelib.db import session_scope
from chalicelib.interactions import queries, seed
from chalicelib.interactions.schemas import SORT_FIELDS, InteractionQuery
from chalicelib.models import Interaction
from devtools import embedded
from tests.factories import make_site, make_user

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/2026_11_26_0002_finder_indexes.py"
SEARCH_MIGRATION = MIGRATION.with_name("2026_12_07_0010_search_text.py")


def _migration(path=MIGRATION):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROWS = 20_000


@pytest.fixture(scope="module")
def site_id():
    """Realistic rows over three sites (COPY, as seed-demo does), vacuumed and analysed."""
    from chalicelib.db import get_engine
    from chalicelib.demo import _vacuum_analyze
    from tests.environment import truncate_all

    truncate_all()
    sites = [make_site(f"Site {i}") for i in range(3)]
    writer = make_user("writer", sites={s: "editor" for s in sites})
    with session_scope() as session:
        seed.bulk_create(
            session, site_ids=sites, writers={s: [writer] for s in sites}, count=ROWS, progress=False
        )
    _vacuum_analyze(get_engine())
    yield sites[0]
    truncate_all()


def _query(**values):
    base = dict(
        search=None,
        title=None,
        lead=None,
        location=None,
        type=None,
        start_date=None,
        end_date=None,
        sort_by="start_datetime",
        sort_direction="desc",
    )
    return SimpleNamespace(**{**base, **values})


def _sql(statement) -> str:
    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def _filtered(query):
    """The list's rows with its filters, their values written in as literals (a plan's check)."""
    values = queries.filter_values(query)
    conditions = queries._conditions(
        queries.active_filters(query),
        lambda name: literal(values[f"filter_{name}"]),
        queries.spans_fields(query),
    )
    return queries.SITE_ROWS.where(and_(*conditions)) if conditions else queries.SITE_ROWS


def _statements(site: int, query):
    """(a page, the count the list runs): a filtered list's capped count, as the service runs it;
    an unfiltered list reads the site's kept total, so a plain count of the site stands in."""
    stmt = _filtered(query).params(site_id=site)
    page = queries.apply_sort(stmt, query.sort_by, query.sort_direction).limit(25)
    if not queries.active_filters(query):
        return page, select(func.count()).select_from(
            stmt.with_only_columns(Interaction.id).order_by(None).subquery()
        )
    return page, queries.capped_count(stmt).params(site_id=site)


def _plans(site: int, query) -> tuple[str, str]:
    plans = []
    with session_scope() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        for statement in _statements(site, query):
            plans.append("\n".join(row[0] for row in session.execute(text("EXPLAIN " + _sql(statement)))))
    return plans[0], plans[1]


@pytest.fixture(autouse=True)
def clean_state():
    """The module's data set stays for all its tests (overrides the per-test truncation)."""
    yield


def test_the_search_document_is_the_stored_expression():
    assert _migration(SEARCH_MIGRATION).SEARCH_DOCUMENT_SQL == queries.SEARCH_DOCUMENT_SQL


@pytest.mark.parametrize("term", ["acme", "okafor", "room b", "50%_off"])
def test_search_uses_the_trigram_index_on_the_search_document(site_id, term):
    page, count = _plans(site_id, _query(search=term))
    assert "Seq Scan on interactions" not in page + count
    assert "ix_interactions_site_search_text_trgm" in count


@pytest.mark.parametrize("name", ["title", "lead", "location"])
def test_substring_filters_use_their_trigram_index(site_id, name):
    page, count = _plans(site_id, _query(**{name: "renew"}))
    assert "Seq Scan on interactions" not in page + count
    assert f"ix_interactions_site_{name}_trgm" in count


def test_the_type_filter_uses_the_type_index(site_id):
    page, count = _plans(site_id, _query(type="Call"))
    assert "Seq Scan on interactions" not in page + count
    assert "ix_interactions_site_type" in count


def test_the_date_filters_use_the_start_index(site_id):
    from datetime import UTC, datetime

    query = _query(start_date=datetime(2025, 1, 1, tzinfo=UTC), end_date=datetime(2025, 2, 1, tzinfo=UTC))
    page, count = _plans(site_id, query)
    assert "Seq Scan on interactions" not in page + count
    assert "ix_interactions_site_start" in page and "ix_interactions_site_start" in count


EXPECTED_SORT_INDEX = {
    ("start_datetime", "asc"): "ix_interactions_site_start",
    ("start_datetime", "desc"): "ix_interactions_site_start",
    ("end_datetime", "asc"): "ix_interactions_site_end_asc",
    ("end_datetime", "desc"): "ix_interactions_site_end_desc",
    ("title", "asc"): "ix_interactions_site_title",
    ("title", "desc"): "ix_interactions_site_title",
    ("type", "asc"): "ix_interactions_site_type",
    ("type", "desc"): "ix_interactions_site_type",
    ("lead", "asc"): "ix_interactions_site_lead",
    ("lead", "desc"): "ix_interactions_site_lead",
    ("location", "asc"): "ix_interactions_site_location_asc",
    ("location", "desc"): "ix_interactions_site_location_desc",
    ("created_at", "asc"): "ix_interactions_site_created",
    ("created_at", "desc"): "ix_interactions_site_created",
    ("updated_at", "asc"): "ix_interactions_site_updated_asc",
    ("updated_at", "desc"): "ix_interactions_site_updated_desc",
}


@pytest.mark.parametrize("sort_by", SORT_FIELDS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_each_sort_reads_its_index_in_order_without_sorting(site_id, sort_by, direction):
    page, count = _plans(site_id, _query(sort_by=sort_by, sort_direction=direction))
    assert "Seq Scan on interactions" not in page + count
    assert EXPECTED_SORT_INDEX[(sort_by, direction)] in page
    assert "Sort" not in page.split("\n")[1]  # the index gives the order: Limit -> Index Scan


@pytest.mark.parametrize("sort_by", SORT_FIELDS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_deep_page_finds_its_ids_in_the_sort_index_and_reads_only_its_rows(site_id, sort_by, direction):
    offset, limit = 5_000, 26
    statement = queries.deferred(queries.SITE_ROWS, sort_by, direction).params(
        site_id=site_id, offset=offset, limit=limit
    )
    with session_scope() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        document = session.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + _sql(statement))).scalar_one()
    document = json.loads(document) if isinstance(document, str) else document
    nodes = _nodes(document[0]["Plan"])
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (sort_by, direction)
    if sort_by not in queries.TEXT_SORTS:
        # (An index on lower(title) cannot return title: a text sort's skipped rows are read from
        # the table, and on this small table the planner may as well sort them.)
        assert not [n for n in nodes if "Sort" in n["Node Type"]], (sort_by, direction)
        skipped = [n for n in nodes if n.get("Index Name") == EXPECTED_SORT_INDEX[(sort_by, direction)]]
        assert [n["Node Type"] for n in skipped] == ["Index Only Scan"], (sort_by, direction, skipped)
        assert (skipped[0]["Actual Rows"], skipped[0]["Heap Fetches"]) == (offset + limit, 0)
    rows = [n for n in nodes if n.get("Index Name") == "pk_interactions"]
    assert [(n["Actual Rows"], n["Actual Loops"]) for n in rows] == [(1, limit)]  # the page's rows alone


def test_the_count_reads_only_an_index(site_id):
    _page, count = _plans(site_id, _query())
    assert "Index Only Scan" in count


def _analysed_count(connection, site: int, query) -> list[dict]:
    """The capped count's plan nodes, run with EXPLAIN ANALYZE (sequential scans not priced out)."""
    _page, count = _statements(site, query)
    document = connection.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + _sql(count))).scalar_one()
    document = json.loads(document) if isinstance(document, str) else document
    return _nodes(document[0]["Plan"])


def _check_capped_count(nodes: list[dict], what) -> None:
    """Numbered under a run condition (it stops at the cap), no sort, no sequential scan."""
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "interactions"]
    assert not [n for n in nodes if "Sort" in n["Node Type"]], what
    windows = [n for n in nodes if n["Node Type"] == "WindowAgg"]
    assert windows and "<= 10001" in windows[0].get("Run Condition", ""), (what, windows)


COUNTED_FILTERS = [
    {"search": "renew"},
    {"search": "with"},
    {"search": "q7z"},
    {"title": "renew"},
    {"lead": "ana"},
    {"location": "room"},
    {"type": "Call"},
    {"search": "the", "type": "Meeting"},
]


@pytest.mark.parametrize("filters", COUNTED_FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_the_capped_count_is_numbered_under_a_run_condition_without_sorting(site_id, filters):
    with session_scope() as session:
        nodes = _analysed_count(session.connection(), site_id, _query(**filters))
    _check_capped_count(nodes, filters)


# --- the search rule's terms: each one narrowed by its trigram index, in every locale --------------

# Accepted terms (three ASCII letters or digits in a row) that are hardest for the index: the
# shortest, those made mostly of punctuation and LIKE's own characters, and those whose other
# characters are letters in one locale and separators in another. None occurs in the seeded rows.
SHORTEST = ["q7z", "QZX", "x9y", "7q7"]
PUNCTUATION_HEAVY = [
    "%%%q7z%%%",
    "\\_%q7z%_\\",
    "...q7z...",
    "'q7z'--",
    "(q7z)",
    "-_-q7z-_-",
    "%" * 126 + "q7z" + "%" * 126,
    "q7z" + " ." * 126,
]
NON_ASCII = [
    "éq7zé",
    "Zürich q7z",
    "Łódź-q7z",
    "東京q7z",
    "Σοφία q7z",
    "q7z\u0301",
    "ｑ７ｚq7z",
    "\U0001d518q7z",
    "١٢٣q7z",
    "q7z²",
    "İq7zı",
]
ACCEPTED = SHORTEST + PUNCTUATION_HEAVY + NON_ASCII
# Refused terms: a trigram index used for them reads every row of the site.
REFUSED = ["%", "ab", "a.b", "éé", "東京都", "Σοφία"]
FIELD_INDEX = {
    "search": "ix_interactions_site_search_text_trgm",
    "title": "ix_interactions_site_title_trgm",
    "lead": "ix_interactions_site_lead_trgm",
    "location": "ix_interactions_site_location_trgm",
}


def _nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _analysed(connection, site: int, query) -> tuple[str, list[dict]]:
    """(the page's plan, the count's plan nodes run with EXPLAIN ANALYZE), sequential scans priced out."""
    page, count = _statements(site, query)
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    page_plan = "\n".join(row[0] for row in connection.execute(text("EXPLAIN " + _sql(page))))
    document = connection.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + _sql(count))).scalar_one()
    document = json.loads(document) if isinstance(document, str) else document
    return page_plan, _nodes(document[0]["Plan"])


def _check_narrowed(connection, site: int, site_rows: int, name: str, term: str) -> None:
    page, nodes = _analysed(connection, site, _query(**{name: term}))
    assert "Seq Scan on interactions" not in page, (name, term, page)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (name, term)
    _check_capped_count(nodes, (name, term))
    scans = [n for n in nodes if n.get("Index Name") == FIELD_INDEX[name]]
    assert scans, (name, term, "the count does not use the trigram index")
    # Unanswerable, the index would hand back all of the site's rows; a term absent from the data
    # gets none (a few at most when all its trigrams happen to occur in one row).
    assert scans[0]["Actual Rows"] < site_rows // 20, (name, term, scans[0]["Actual Rows"], site_rows)


def _site_rows(connection, site: int) -> int:
    return connection.execute(
        text("SELECT count(*) FROM interactions WHERE site_id = :s"), {"s": site}
    ).scalar_one()


@pytest.mark.parametrize("term", ACCEPTED)
@pytest.mark.parametrize("name", sorted(FIELD_INDEX))
def test_every_kind_of_accepted_term_is_narrowed_by_its_trigram_index(site_id, name, term):
    assert getattr(InteractionQuery.model_validate({name: term}), name) == term.strip()
    with session_scope() as session:
        _check_narrowed(session.connection(), site_id, _site_rows(session.connection(), site_id), name, term)


def _check_refused(connection, site: int, site_rows: int, term: str) -> None:
    _page, nodes = _analysed(connection, site, _query(search=term))
    scans = [n["Actual Rows"] for n in nodes if n.get("Index Name") == FIELD_INDEX["search"]]
    narrowed = bool(scans) and scans[0] < site_rows // 20
    # Under a UTF-8 LC_CTYPE the index could answer three non-ASCII letters ("東京都"); under
    # LC_CTYPE=C it cannot, and the rule is the same on every database.
    assert narrowed == (_word_chars_are_unicode(connection) and re.search(r"[^\W_]{3}", term) is not None), (
        term,
        scans,
        site_rows,
    )


@pytest.mark.parametrize("term", REFUSED)
def test_a_refused_term_is_one_the_trigram_index_cannot_narrow(site_id, term):
    """Why the rule exists (and that the check above can fail): the index would read the whole site."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        InteractionQuery.model_validate({"search": term})
    with session_scope() as session:
        _check_refused(session.connection(), site_id, _site_rows(session.connection(), site_id), term)


def _word_chars_are_unicode(connection) -> bool:
    """Whether pg_trgm counts non-ASCII letters as word characters here (a UTF-8 LC_CTYPE)."""
    return connection.execute(text("SELECT cardinality(show_trgm('é'))")).scalar_one() > 0


# --- the same checks on a database with another LC_CTYPE -------------------------------------------

UTF8_LOCALES = embedded.UTF8_LOCALES


@pytest.fixture(scope="module")
def other_ctype(site_id):
    """A database on the same server whose LC_CTYPE classifies characters the other way (C if the
    test database's is a UTF-8 locale, else a UTF-8 locale), built by the migrations and seeded."""
    from alembic import command
    from alembic.config import Config

    from chalicelib.db import get_engine
    from tests.environment import TEST_DATABASE

    with get_engine().connect() as conn:
        here_unicode = _word_chars_are_unicode(conn)
    admin = create_engine(os.environ["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    name = f"{TEST_DATABASE}_ctype"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        created = embedded.create_database(conn, name, locales=("C",) if here_unicode else UTF8_LOCALES)
        if created is None:  # made with the server's default locale: of no use here
            conn.execute(text(f'DROP DATABASE "{name}"'))
    if created is None:
        admin.dispose()
        pytest.skip("the server offers no UTF-8 locale besides the test database's C")
    url = make_url(os.environ["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        config = Config(str(MIGRATION.parents[2] / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATION.parents[2] / "migrations"))
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        with Session(engine) as session:
            sites = [
                session.execute(
                    text("INSERT INTO sites (name, name_skeleton) VALUES (:n, :n) RETURNING id"),
                    {"n": f"Site {i}"},
                ).scalar_one()
                for i in range(3)
            ]
            writer = session.execute(
                text(
                    "INSERT INTO users (username, email, password_hash) VALUES ('writer', 'w@example.com', 'x')"
                    " RETURNING id"
                )
            ).scalar_one()
            seed.bulk_create(
                session, site_ids=sites, writers={s: [writer] for s in sites}, count=ROWS, progress=False
            )
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) interactions"))
        with engine.connect() as conn:
            assert _word_chars_are_unicode(conn) != here_unicode
        yield SimpleNamespace(engine=engine, site=sites[0], ctype=created)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("name", sorted(FIELD_INDEX))
def test_accepted_terms_are_narrowed_under_the_other_lc_ctype_too(other_ctype, name):
    with other_ctype.engine.connect() as conn:
        rows = _site_rows(conn, other_ctype.site)
        for term in ACCEPTED:
            _check_narrowed(conn, other_ctype.site, rows, name, term)
            conn.rollback()


def test_refused_terms_are_not_narrowed_under_the_other_lc_ctype_either(other_ctype):
    with other_ctype.engine.connect() as conn:
        rows = _site_rows(conn, other_ctype.site)
        for term in REFUSED:
            _check_refused(conn, other_ctype.site, rows, term)
            conn.rollback()


def test_under_lc_ctype_c_non_ascii_letters_are_separators_and_ascii_ones_words(other_ctype, site_id):
    """What the rule is built on: show_trgm under each LC_CTYPE (ASCII words alike everywhere)."""
    with session_scope() as session:
        here = session.execute(text("SELECT show_trgm('Łódź q7z')")).scalar_one()
    with other_ctype.engine.connect() as conn:
        there = conn.execute(text("SELECT show_trgm('Łódź q7z')")).scalar_one()
    ascii_ = {"  q", " q7", "q7z", "7z "}
    assert ascii_ <= set(here) and ascii_ <= set(there)
    c_locale, unicode_locale = (there, here) if other_ctype.ctype == "C" else (here, there)
    assert set(c_locale) == ascii_ | {"  d", " d "}  # only the ASCII 'd' of "Łódź" is a word
    assert len(unicode_locale) > len(c_locale)


# --- cursor pages: a range of the sort's index from the cursor on, the same work at any depth ------


def _cursor_row(connection, site: int, sort_by: str, direction: str, zone: str, depth: int) -> tuple:
    """The row `depth` rows into the list (among the values, or among the nulls): (value, id)."""
    key = f'lower({sort_by}) COLLATE "C"' if sort_by in queries.TEXT_SORTS else sort_by
    order = f"id {direction}" if zone == "null" else f"{key} {direction}, id {direction}"
    where = f"site_id = :s AND {sort_by} IS {'' if zone == 'null' else 'NOT '}NULL"
    available = connection.execute(
        text(f"SELECT count(*) FROM interactions WHERE {where}"), {"s": site}
    ).scalar_one()
    found = connection.execute(
        text(f"SELECT {sort_by}, id FROM interactions WHERE {where} ORDER BY {order} OFFSET :d LIMIT 1"),
        {"s": site, "d": min(depth, available // 2)},
    ).one()
    return tuple(found)


def _examined(nodes: list[dict]) -> int:
    """Rows the plan's scans read: those they returned and those their filters removed."""
    return sum(
        n["Actual Rows"] + n.get("Rows Removed by Filter", 0) + n.get("Rows Removed by Index Recheck", 0)
        for n in nodes
        if "Scan" in n["Node Type"] and "Bitmap Index" not in n["Node Type"]
    )


# A cursor stands among the values of its sort, or (a nullable sort's) among the nulls after them.
CURSOR_ZONES = [
    (s, z) for s in SORT_FIELDS for z in ("key", "null") if z == "key" or s in queries.NULLABLE_SORTS
]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort_by,zone", CURSOR_ZONES)
@pytest.mark.parametrize("search", [None, "renew"])
def test_a_cursor_page_costs_the_same_at_any_depth_through_an_index(
    site_id, sort_by, direction, zone, search
):
    query = _query(sort_by=sort_by, sort_direction=direction, search=search)
    rows = _filtered(query)
    limit = 26
    examined = []
    with session_scope() as session:
        connection = session.connection()
        for depth in (5, 1500):
            key, row_id = _cursor_row(connection, site_id, sort_by, direction, zone, depth)
            params = {"site_id": site_id, "after_id": row_id, "limit": limit}
            if zone == "key":
                params["after_key"] = key
            statement = queries.keyset_page(rows, sort_by, direction, zone).params(**params)
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            document = connection.execute(
                text("EXPLAIN (ANALYZE, FORMAT JSON) " + _sql(statement))
            ).scalar_one()
            document = json.loads(document) if isinstance(document, str) else document
            nodes = _nodes(document[0]["Plan"])
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (sort_by, direction, zone)
            assert [n for n in nodes if "Index" in n["Node Type"]], "no index"
            if search is None and zone == "key":
                # the range starts at the cursor (a row comparison on the sort's index) and stops
                # at the page: no scan reads more than the page
                scans = [n for n in nodes if n.get("Index Name")]
                assert EXPECTED_SORT_INDEX[(sort_by, direction)] in {n["Index Name"] for n in scans}
                assert "ROW(" in " ".join(n.get("Index Cond", "") for n in scans)
                assert all(n["Actual Rows"] <= limit for n in scans), (sort_by, direction, depth)
            examined.append(_examined(nodes))
    shallow, deep = examined
    assert deep <= 2 * shallow + 2 * limit, (sort_by, direction, zone, examined)
