"""Migration 0007's indexes answer the audit trail's reads: a site's newest page (unfiltered and with
each filter) and one interaction's history, as the app builds them.

With sequential scans priced out (`enable_seqscan = off`) a plan still shows `Seq Scan on
audit_events` when no index can answer it, so the checks hold for a small table as for a big one
(at a million events the planner picks the same indexes by itself: see docs/performance.md and the bench's
plan check). The unfiltered first page is also run under EXPLAIN ANALYZE: it reads a page's worth of
events, not the site's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from chalicelib.audit import service
from chalicelib.audit.schemas import AuditQuery, HistoryQuery
from chalicelib.db import session_scope
from chalicelib.interactions import seed
from chalicelib.models import Interaction
from tests.factories import make_site, make_user

ROWS = 20_000


@pytest.fixture(scope="module")
def data():
    """Realistic rows over three sites (COPY, as seed-demo does) with their events, analysed."""
    from chalicelib.audit.events import by_cli
    from chalicelib.db import get_engine
    from chalicelib.demo import _vacuum_analyze
    from tests.environment import truncate_all

    truncate_all()
    sites = [make_site(f"Site {i}") for i in range(3)]
    admin = make_user("admin", sites={s: "admin" for s in sites})
    with session_scope() as session:
        seed.bulk_create(
            session, site_ids=sites, writers={s: [admin] for s in sites}, count=ROWS, progress=False
        )
        seed.record_history(session, origin=by_cli(), after_id=0, progress=False)
    _vacuum_analyze(get_engine())
    with session_scope() as session:
        interaction = session.query(Interaction.id).filter(Interaction.site_id == sites[1]).first()[0]
    yield {"site": sites[1], "admin": admin, "interaction": interaction}
    truncate_all()


@pytest.fixture(autouse=True)
def clean_state():
    """The module's data set stays for all its tests (overrides the per-test truncation)."""
    yield


def _plan(statement, params, *, analyze: bool = False):
    """EXPLAIN of the statement exactly as the driver would get it (its text and parameters)."""
    with session_scope() as session:
        connection = session.connection()
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        expanded = statement.compile(dialect=connection.dialect).construct_expanded_state(params)
        positional = tuple(expanded.parameters[name] for name in expanded.positiontup)
        prefix = "EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "EXPLAIN "
        rows = connection.exec_driver_sql(prefix + expanded.statement, positional).all()
    return rows[0][0] if analyze else "\n".join(row[0] for row in rows)


def _site_page(data, **filters):
    read = service.site_read(AuditQuery.model_validate(filters), site_id=data["site"])
    return read.statement, {**read.params, "site_id": data["site"], "caller_id": data["admin"]}


def _after(data, newest_first_rows: int, **filters):
    """The page of the site's events after a cursor `newest_first_rows` events deep."""
    from chalicelib.kit.pagination import Position, seal

    query = AuditQuery.model_validate(filters)
    with session_scope() as session:
        event_id = session.execute(
            text("SELECT id FROM audit_events WHERE site_id = :s ORDER BY id DESC OFFSET :d LIMIT 1"),
            {"s": data["site"], "d": newest_first_rows},
        ).scalar_one()
    cursor = seal(service._site_binding(data["site"], query), Position(None, event_id, 0, True))
    return _site_page(data, **filters, cursor=cursor)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"action": "interaction.updated"},
        {"action": "interaction."},
        {"actor_id": "1"},
        {"target_type": "interaction", "target_id": "5"},
        {"target_type": "user"},
    ],
    ids=["unfiltered", "action", "family", "actor", "target", "target type"],
)
def test_a_sites_page_is_an_index_scan(data, filters):
    plan = _plan(*_site_page(data, **filters))
    assert "Seq Scan on audit_events" not in plan
    assert "audit_events" in plan and ("ix_audit_events_" in plan or "pk_audit_events" in plan)


def test_the_time_filters_are_answered_by_an_index(data):
    plan = _plan(*_site_page(data, since=datetime(2024, 1, 1, tzinfo=UTC).isoformat(), until="2999-01-01"))
    assert "Seq Scan on audit_events" not in plan


def _events_read(statement, params) -> int:
    """Rows of audit_events the statement's scans read (EXPLAIN ANALYZE), all of them index scans."""
    document = _plan(statement, params, analyze=True)
    document = json.loads(document) if isinstance(document, str) else document

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(document[0]["Plan"]) if n.get("Relation Name") == "audit_events"]
    assert scans and all(n["Node Type"].startswith("Index") for n in scans)
    return sum(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in scans)


def test_the_unfiltered_first_page_reads_a_page_not_the_site(data):
    read = _events_read(*_site_page(data))
    assert read <= 25 * 10, read  # the site holds a third of 20,000 events


@pytest.mark.parametrize("depth", [10, 5000])
def test_a_cursor_page_of_the_trail_reads_a_page_from_the_cursor_on(data, depth):
    read = _events_read(*_after(data, depth))
    assert read <= 25 * 10, read  # the same at any depth


def test_one_interactions_history_uses_the_target_index(data):
    read = service.history_read(
        HistoryQuery.model_validate({}), site_id=data["site"], interaction_id=data["interaction"]
    )
    plan = _plan(service.HISTORY, {**read.params, "site_id": data["site"], "caller_id": data["admin"]})
    assert "Seq Scan on audit_events" not in plan
    assert "ix_audit_events_site_id_target" in plan
