"""Property: walking every page of any filter/sort/per_page combination returns every matching row
exactly once, in the documented order (checked against a Python oracle over the same rows)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from chalicelib.db import session_scope
from chalicelib.models import INTERACTION_TYPES
from tests.interactions.helpers import insert_rows, send

# A tiny alphabet makes ties, shared substrings and LIKE wildcards likely; ASCII only, so that
# PostgreSQL's and Python's lower() agree.
ALPHABET = "aAbB _%\\"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
INSTANTS = [T0 + timedelta(hours=h) for h in (-30, -1, 0, 5, 23, 47)]
ENDS = [INSTANTS[-1], INSTANTS[-1] + timedelta(hours=1)]  # never before any start
TEXT_FIELDS = ("title", "type", "lead", "location", "description", "notes")
NULLABLE = {"end_datetime", "location", "updated_at"}

words = st.text(ALPHABET, min_size=1, max_size=6)
# A filter term is empty (no filter) or holds three ASCII letters in a row (the search rule), with
# the alphabet's spaces and LIKE wildcards around them.
terms = st.just("") | st.builds(
    lambda before, run, after: before + run + after,
    st.text(ALPHABET, max_size=2),
    st.text("aAbB", min_size=3, max_size=3),
    st.text(ALPHABET, max_size=2),
)
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "title": words,
            "lead": words,
            "type": st.sampled_from(INTERACTION_TYPES),
            "location": st.none() | words,
            "description": st.none() | words,
            "notes": st.none() | words,
            "start_datetime": st.sampled_from(INSTANTS),
            "end_datetime": st.none() | st.sampled_from(ENDS),
            "created_at": st.sampled_from(INSTANTS),
            "updated_at": st.none() | st.sampled_from(INSTANTS),
        }
    ),
    min_size=3,
    max_size=25,
)


def _bound(instant: datetime, bare: bool) -> str:
    return instant.date().isoformat() if bare else instant.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def queries(draw):
    query: dict[str, str] = {}
    for name in ("search", "title", "lead", "location"):
        if draw(st.booleans()) and draw(st.booleans()):
            query[name] = draw(terms)
    if draw(st.booleans()) and draw(st.booleans()):
        query["type"] = draw(st.sampled_from(INTERACTION_TYPES))
    bounds = sorted(draw(st.lists(st.sampled_from(INSTANTS), max_size=2)))
    if bounds and draw(st.booleans()):
        query["start_date"] = _bound(bounds[0], draw(st.booleans()))
    if len(bounds) == 2 and draw(st.booleans()):
        query["end_date"] = _bound(bounds[1], draw(st.booleans()))
    query["sort_by"] = draw(
        st.sampled_from(
            [
                "start_datetime",
                "end_datetime",
                "title",
                "type",
                "lead",
                "location",
                "created_at",
                "updated_at",
            ]
        )
    )
    query["sort_direction"] = draw(st.sampled_from(["asc", "desc"]))
    query["per_page"] = str(draw(st.sampled_from([2, 3, 7, 100])))
    return query


def _parse_bound(value: str, *, end: bool) -> datetime:
    if len(value) == 10:
        day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return day + timedelta(days=1, microseconds=-1) if end else day
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def oracle(rows: list[dict], query: dict[str, str]) -> list[int]:
    def contains(value, term):
        return value is not None and term.lower() in value.lower()

    matching = []
    for row in rows:
        search = query.get("search", "").strip()
        if search and not any(contains(row[f], search) for f in TEXT_FIELDS):
            continue
        if any(
            query.get(f, "").strip() and not contains(row[f], query[f].strip())
            for f in ("title", "lead", "location")
        ):
            continue
        if "type" in query and row["type"] != query["type"]:
            continue
        if "start_date" in query and row["start_datetime"] < _parse_bound(query["start_date"], end=False):
            continue
        if "end_date" in query and row["start_datetime"] > _parse_bound(query["end_date"], end=True):
            continue
        matching.append(row)
    sort_by, descending = query["sort_by"], query["sort_direction"] == "desc"

    def key(row):
        value = row[sort_by]
        return value.lower() if isinstance(value, str) and sort_by != "type" else value

    present = sorted(
        (r for r in matching if r[sort_by] is not None), key=lambda r: (key(r), r["id"]), reverse=descending
    )
    absent = sorted((r for r in matching if r[sort_by] is None), key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in present + absent]


def walk(client, token: str, query: dict[str, str]) -> tuple[list[int], dict]:
    seen, page, meta = [], 1, None
    while True:
        response = send(client, "GET", "/api/interactions?" + urlencode({**query, "page": page}), token)
        assert response.status_code == 200, response.json_body
        body = response.json_body
        meta = body["meta"]["pagination"]
        seen += [row["id"] for row in body["data"]["interactions"]]
        if page >= meta["total_pages"]:
            return seen, meta
        page += 1


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, walks=st.lists(queries(), min_size=1, max_size=3))
def test_walking_all_pages_returns_every_matching_row_exactly_once(client, world, redis_client, rows, walks):
    with session_scope() as session:
        session.execute(text("DELETE FROM interactions"))
    redis_client.flushdb()  # the per-user rate limit is not what this test is about
    ids = insert_rows(world.site_a, rows)
    insert_rows(world.site_b, rows)  # the same rows in another site must never appear
    stored = [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
    for query in walks:
        expected = oracle(stored, query)
        seen, meta = walk(client, world.token("viewer"), query)
        assert seen == expected, query
        per_page = int(query["per_page"])
        assert meta["total_records"] == len(expected)
        assert meta["total_pages"] == math.ceil(len(expected) / per_page)
