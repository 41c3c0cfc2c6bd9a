"""Migration 0002's indexes serve every list query: search, each filter and each sort.

With sequential scans priced out (`enable_seqscan = off`) a plan still shows `Seq Scan on
interactions` when no index can answer the query, so these checks hold for a small test table as
for a big one. (At 1,000,000 rows with 200,000 in one site the planner picks the same indexes by
itself; see the README's Finder section.)
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from chalicelib.db import session_scope
from chalicelib.interactions import queries, seed
from chalicelib.interactions.schemas import SORT_FIELDS
from tests.factories import make_site, make_user

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/2026_11_26_0002_finder_indexes.py"


def _migration():
    spec = importlib.util.spec_from_file_location("finder_indexes", MIGRATION)
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
        seed.bulk_create(session, site_ids=sites, writers={s: [writer] for s in sites}, count=ROWS,
                         progress=False)
    _vacuum_analyze(get_engine())
    yield sites[0]
    truncate_all()


def _query(**values):
    base = dict(search=None, title=None, lead=None, location=None, type=None, start_date=None,
                end_date=None, sort_by="start_datetime", sort_direction="desc")
    return SimpleNamespace(**{**base, **values})


def _plans(site: int, query) -> tuple[str, str]:
    stmt = queries.apply_filters(queries.scoped(site), query)
    page = queries.apply_sort(stmt, query.sort_by, query.sort_direction).limit(25)
    plans = []
    with session_scope() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        for statement in (page, queries.count(stmt)):
            sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plans.append("\n".join(row[0] for row in session.execute(text("EXPLAIN " + sql))))
    return plans[0], plans[1]


@pytest.fixture(autouse=True)
def clean_state():
    """The module's data set stays for all its tests (overrides the per-test truncation)."""
    yield


def test_the_search_document_is_the_indexed_expression():
    assert _migration().SEARCH_DOCUMENT_SQL == queries.SEARCH_DOCUMENT_SQL


@pytest.mark.parametrize("term", ["acme", "okafor", "room b", "50%_off"])
def test_search_uses_the_trigram_index_on_the_search_document(site_id, term):
    page, count = _plans(site_id, _query(search=term))
    assert "Seq Scan on interactions" not in page + count
    assert "ix_interactions_site_search_trgm" in count


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
    ("start_datetime", "asc"): "ix_interactions_site_start", ("start_datetime", "desc"): "ix_interactions_site_start",
    ("end_datetime", "asc"): "ix_interactions_site_end_asc", ("end_datetime", "desc"): "ix_interactions_site_end_desc",
    ("title", "asc"): "ix_interactions_site_title", ("title", "desc"): "ix_interactions_site_title",
    ("type", "asc"): "ix_interactions_site_type", ("type", "desc"): "ix_interactions_site_type",
    ("lead", "asc"): "ix_interactions_site_lead", ("lead", "desc"): "ix_interactions_site_lead",
    ("location", "asc"): "ix_interactions_site_location_asc",
    ("location", "desc"): "ix_interactions_site_location_desc",
    ("created_at", "asc"): "ix_interactions_site_created", ("created_at", "desc"): "ix_interactions_site_created",
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


def test_the_count_reads_only_an_index(site_id):
    _page, count = _plans(site_id, _query())
    assert "Index Only Scan" in count
