"""Cursors (keyset pagination) on GET /api/interactions, the depth limit and capped totals, as API.md's
"Depth and totals" describes them: a walk by cursor returns every row exactly once in the list's
order (every sort, both directions, nulls last, ties by id), rows written during a walk never make
it repeat one, and a cursor works only for the query it came from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from chalicelib.db import session_scope
from chalicelib.interactions.schemas import SORT_FIELDS
from tests.interactions.helpers import error, fields, insert_rows, send, token_for
from tests.interactions.test_paging_property import oracle

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _get(client, token, query):
    response = send(client, "GET", "/api/interactions?" + urlencode(query), token)
    assert response.status_code == 200, response.json_body
    return response.json_body


def walk(client, token, query, *, between=None, per_page=(3,)):
    """Every page by cursor: (ids in order, each page's meta). `between(n)` runs after page n;
    `per_page` cycles (a cursor may change it)."""
    seen, metas, cursor, n = [], [], None, 0
    while True:
        page_query = {**query, "per_page": per_page[n % len(per_page)]}
        if cursor:
            page_query["cursor"] = cursor
        body = _get(client, token, page_query)
        seen += [row["id"] for row in body["data"]["interactions"]]
        metas.append(body["meta"]["pagination"])
        cursor = body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            return seen, metas
        if between:
            between(n)
        n += 1
        assert n < 1000


ROWS = [
    # ties on every column, mixed case, nulls in the nullable sorts, in no order of id
    {
        "title": t,
        "lead": ld,
        "type": ty,
        "location": loc,
        "start_datetime": T0 + timedelta(hours=h),
        "end_datetime": None if e is None else T0 + timedelta(hours=e),
        "created_at": T0 + timedelta(hours=c),
        "updated_at": None if u is None else T0 + timedelta(hours=u),
    }
    for t, ld, ty, loc, h, e, c, u in [
        ("banana", "Bo", "Call", "Room B", 3, 5, 1, None),
        ("Apple", "ann", "Meeting", None, 1, None, 1, 2),
        ("apple", "Ann", "Call", "room b", 3, 5, 2, None),
        ("Cherry", "cy", "Email", "Hall", 0, 9, 1, 1),
        ("apple", "bo", "Meeting", None, 2, None, 3, 2),
        ("Éclair", "Zed", "Review", "Zone", 5, 7, 3, None),
        ("banana", "Bo", "Call", "Room B", 3, 5, 1, 4),
        ("cherry", "Cy", "Email", None, 0, None, 2, 1),
        ("Date", "ann", "Training", "hall", 4, 6, 0, None),
        ("apple", "Ann", "Update", "Room B", 1, 5, 1, 2),
        ("fig", "Dee", "Call", None, 6, None, 4, None),
    ]
]
STORED_FIELDS = (
    "title",
    "lead",
    "type",
    "location",
    "start_datetime",
    "end_datetime",
    "created_at",
    "updated_at",
)


def _stored(ids):
    return [{**row, "description": None, "notes": None, "id": i} for row, i in zip(ROWS, ids, strict=True)]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", SORT_FIELDS)
def test_a_cursor_walk_returns_every_row_once_in_order(client, world, sort_by, direction):
    ids = insert_rows(world.site_a, ROWS)
    insert_rows(world.site_b, ROWS)  # another site's rows never appear
    query = {"sort_by": sort_by, "sort_direction": direction}
    expected = oracle(_stored(ids), query)
    for per_page in ((1,), (2,), (3,), (4, 1, 7)):
        seen, metas = walk(client, world.token("viewer"), query, per_page=per_page)
        assert seen == expected, per_page
    # the pages by number agree
    by_number = [
        row["id"]
        for page in (1, 2, 3, 4)
        for row in _get(client, world.token("viewer"), {**query, "per_page": 3, "page": page})["data"][
            "interactions"
        ]
    ]
    assert by_number == expected


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", ["location", "end_datetime", "updated_at"])
def test_a_cursor_walk_of_a_filtered_nullable_sort_crosses_into_the_nulls(client, world, sort_by, direction):
    ids = insert_rows(world.site_a, ROWS)
    query = {"sort_by": sort_by, "sort_direction": direction, "search": "app"}
    expected = oracle(_stored(ids), query)
    assert len(expected) == 4
    assert walk(client, world.token("viewer"), query, per_page=(1,))[0] == expected


def test_cursor_pages_have_no_page_number_and_keep_the_first_pages_total(client, world):
    insert_rows(world.site_a, ROWS)
    seen, metas = walk(client, world.token("viewer"), {"sort_by": "title"}, per_page=(4,))
    assert metas[0]["page"] == 1 and metas[0]["total_pages"] == 3
    for meta in metas[1:]:
        assert set(meta) == {"per_page", "total_records", "total_exact", "next_cursor"}
        assert (meta["total_records"], meta["total_exact"]) == (11, True)
    assert [m["next_cursor"] is None for m in metas] == [False, False, True]


def test_the_last_page_has_no_cursor_even_when_it_is_full(client, world):
    insert_rows(world.site_a, [{} for _ in range(6)])
    first = _get(client, world.token("viewer"), {"per_page": 3})
    last = _get(
        client, world.token("viewer"), {"per_page": 3, "cursor": first["meta"]["pagination"]["next_cursor"]}
    )
    assert len(last["data"]["interactions"]) == 3
    assert last["meta"]["pagination"]["next_cursor"] is None


def test_rows_inserted_during_a_walk_never_repeat_a_row(client, world):
    ids = insert_rows(
        world.site_a, [{"title": f"row {i:02}", "start_datetime": T0 + timedelta(hours=i)} for i in range(12)]
    )
    made = []

    def write(n):
        # before, at and after the walk's position, with ties on the sort value
        made.extend(
            insert_rows(
                world.site_a,
                [
                    {"title": "row 00", "start_datetime": T0},
                    {"title": f"row {n * 3:02}", "start_datetime": T0 + timedelta(hours=n * 3)},
                    {"title": "row 99", "start_datetime": T0 + timedelta(days=9)},
                ],
            )
        )

    for sort_by in ("start_datetime", "title"):
        made.clear()
        with session_scope() as session:
            session.execute(text("DELETE FROM interactions WHERE id <> ALL(:ids)"), {"ids": ids})
        seen, _ = walk(
            client, world.token("viewer"), {"sort_by": sort_by, "sort_direction": "asc"}, between=write
        )
        assert len(seen) == len(set(seen)), sort_by
        assert set(ids) <= set(seen), sort_by  # every row that was there and unchanged, once
        assert set(seen) <= set(ids) | set(made)


def test_rows_left_alone_during_a_walk_are_returned_once_whatever_others_do(client, world):
    ids = insert_rows(world.site_a, [{"title": f"row {i:02}"} for i in range(12)])
    touched = set()

    def change(n):
        with session_scope() as session:  # one row moved to the front, one to the back, one gone
            for title, row in (("aaa", ids[11 - n]), ("zzz", ids[n])):
                session.execute(
                    text("UPDATE interactions SET title = :t WHERE id = :i"), {"t": title, "i": row}
                )
            session.execute(text("DELETE FROM interactions WHERE id = :i"), {"i": ids[5 + n]})
        touched.update({ids[11 - n], ids[n], ids[5 + n]})

    seen, _ = walk(
        client, world.token("viewer"), {"sort_by": "title", "sort_direction": "asc"}, between=change
    )
    untouched = [i for i in ids if i not in touched]
    assert untouched and all(seen.count(i) == 1 for i in untouched)
    assert all(seen.count(i) == 1 for i in seen if i not in touched)  # only a changed row may come twice


# --- foreign and forged cursors ----------------------------------------------------------------------


def _cursor(client, token, query):
    return _get(client, token, {**query, "per_page": 1})["meta"]["pagination"]["next_cursor"]


def _refused(response, field="cursor"):
    assert error(response) == (400, "VALIDATION_ERROR"), response.json_body
    assert fields(response) == {field}


def _listing(client, token, query):
    return send(client, "GET", "/api/interactions?" + urlencode(query), token)


@pytest.mark.parametrize(
    "origin,reuse",
    [
        ({"sort_by": "title"}, {"sort_by": "lead"}),
        ({"sort_by": "title"}, {"sort_by": "title", "sort_direction": "asc"}),
        ({"search": "apple"}, {"search": "banana"}),
        ({"search": "apple"}, {}),
        ({}, {"type": "Call"}),
        ({"start_date": "2024-05-01"}, {"start_date": "2024-05-02"}),
    ],
)
def test_a_cursor_of_another_query_is_a_400_naming_cursor(client, world, origin, reuse):
    insert_rows(world.site_a, ROWS)
    cursor = _cursor(client, world.token("viewer"), origin)
    assert cursor
    _refused(_listing(client, world.token("viewer"), {**reuse, "cursor": cursor}))


def test_a_cursor_of_another_site_is_a_400(client, world):
    insert_rows(world.site_a, ROWS)
    insert_rows(world.site_b, ROWS)
    cursor = _cursor(client, world.token("other"), {})
    _refused(_listing(client, world.token("viewer"), {"cursor": cursor}))


def test_a_cursor_of_another_list_is_a_400(client, world):
    insert_rows(world.site_a, ROWS)
    users = send(client, "GET", f"/api/sites/{world.site_a}/users?per_page=1", world.token("admin")).json_body
    cursor = users["meta"]["pagination"]["next_cursor"]
    assert cursor
    _refused(_listing(client, world.token("viewer"), {"cursor": cursor}))


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1],  # the tag
        lambda c: c[:10] + ("A" if c[10] != "A" else "B") + c[11:],  # the nonce
        lambda c: c[:40] + ("A" if c[40] != "A" else "B") + c[41:],  # the sealed payload
        lambda c: c[:-1],
        lambda c: c + "A",
        lambda c: "A" + c,
        lambda c: "AAAA",
        lambda c: "x" * 60,
        lambda c: base64.urlsafe_b64encode(b'[["2024-01-01", 1, 5, true]]').decode().rstrip("="),
        lambda c: c + "=",
        lambda c: c[:5] + "+" + c[6:],  # not URL-safe base64
        lambda c: "a" * 5000,
    ],
)
def test_an_altered_or_forged_cursor_is_a_400_naming_cursor(client, world, forge):
    insert_rows(world.site_a, ROWS)
    cursor = _cursor(client, world.token("viewer"), {})
    forged = forge(cursor)
    assert forged != cursor
    _refused(_listing(client, world.token("viewer"), {"cursor": forged}))


def test_a_cursor_hides_the_values_it_carries(client, world):
    insert_rows(
        world.site_a, [{"title": "Confidential merger with Initech"}, {"title": "Confidential merger"}]
    )
    cursor = _cursor(client, world.token("viewer"), {"sort_by": "title"})
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"Confidential" not in raw and b"merger" not in raw.lower()


def test_page_and_cursor_together_are_a_400_naming_page(client, world):
    insert_rows(world.site_a, ROWS)
    cursor = _cursor(client, world.token("viewer"), {})
    _refused(_listing(client, world.token("viewer"), {"cursor": cursor, "page": 1}), field="page")


def test_a_bad_cursor_is_refused_after_the_rights(client, world):
    response = send(client, "GET", "/api/interactions?cursor=AAAA", world.token("no_site"))
    assert error(response) == (403, "SITE_CONTEXT_REQUIRED")


def test_a_cursor_survives_a_key_rotation_and_dies_with_the_previous_key(client, world, reconfigure):
    from tests.environment import TEST_JWT_SECRET

    insert_rows(world.site_a, ROWS)
    cursor = _cursor(client, world.token("viewer"), {})
    new_key = "rotated-signing-key-" + "y" * 40
    reconfigure(JWT_SECRET=new_key, JWT_PREVIOUS_SECRET=TEST_JWT_SECRET)
    # the world's tokens were signed with the previous key: still valid during the rotation
    response = _listing(client, world.token("viewer"), {"cursor": cursor, "per_page": 1})
    assert response.status_code == 200, response.json_body
    fresh = response.json_body["meta"]["pagination"]["next_cursor"]
    reconfigure(JWT_PREVIOUS_SECRET=None)
    viewer = token_for(world.users["viewer"], world.site_a)
    _refused(_listing(client, viewer, {"cursor": cursor}))  # sealed with the retired key
    assert _listing(client, viewer, {"cursor": fresh}).status_code == 200


# --- the depth limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page,per_page", [(401, 25), (101, 100), (10001, 1), (2, 10000 // 2 + 1)])
def test_a_page_past_the_depth_limit_is_a_400_naming_page_that_points_to_cursor(
    client, world, page, per_page
):
    response = _listing(client, world.token("viewer"), {"page": page, "per_page": min(per_page, 100)})
    if (page - 1) * min(per_page, 100) < 10_000:
        assert response.status_code == 200
        return
    _refused(response, field="page")
    assert "cursor" in response.json_body["error"]["details"][0]["message"]


@pytest.mark.parametrize("page,per_page", [(400, 25), (100, 100), (10000, 1)])
def test_the_deepest_pages_within_the_limit_are_answered(client, world, page, per_page):
    assert _listing(client, world.token("viewer"), {"page": page, "per_page": per_page}).status_code == 200


# --- capped totals -----------------------------------------------------------------------------------


def _many(site_id: int, count: int, title: str) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO interactions (site_id, title, type, lead, start_datetime, timezone)"
                " SELECT :s, :t || ' ' || g, 'Call', 'Lead', now() - g * interval '1 minute', 'UTC'"
                " FROM generate_series(1, :n) AS g"
            ),
            {"s": site_id, "t": title, "n": count},
        )
        # Statistics as autovacuum would soon have them. Planned on another test's statistics (a
        # site they do not know), a rare term's page over these rows outlasts the statement timeout:
        # see docs/performance.md, "Found on the way".
        session.execute(text("ANALYZE interactions"))


def test_a_filtered_total_stops_at_10000_and_the_unfiltered_one_is_exact(client, world):
    _many(world.site_a, 10_003, "Quarterly review")
    _many(world.site_a, 2, "Other")
    filtered = _get(client, world.token("viewer"), {"search": "quarterly"})["meta"]["pagination"]
    assert (filtered["total_records"], filtered["total_exact"], filtered["total_pages"]) == (
        10_000,
        False,
        400,
    )
    unfiltered = _get(client, world.token("viewer"), {})["meta"]["pagination"]
    assert (unfiltered["total_records"], unfiltered["total_exact"]) == (10_005, True)
    exact = _get(client, world.token("viewer"), {"search": "other"})["meta"]["pagination"]
    assert (exact["total_records"], exact["total_exact"]) == (2, True)
    # a cursor page reports the first page's total
    after = _get(client, world.token("viewer"), {"search": "quarterly", "cursor": filtered["next_cursor"]})
    assert (after["meta"]["pagination"]["total_records"], after["meta"]["pagination"]["total_exact"]) == (
        10_000,
        False,
    )


def test_a_total_of_exactly_10000_is_exact(client, world):
    _many(world.site_a, 10_000, "Quarterly review")
    _many(world.site_a, 1, "Other")
    meta = _get(client, world.token("viewer"), {"search": "quarterly"})["meta"]["pagination"]
    assert (meta["total_records"], meta["total_exact"], meta["total_pages"]) == (10_000, True, 400)


def test_a_full_page_of_a_filter_with_fewer_than_10000_matches_is_counted_exactly(client, world):
    _many(world.site_a, 60, "Quarterly review")
    _many(world.site_a, 5, "Other")
    for filters in ({"search": "quarterly"}, {"title": "review"}, {"type": "Call"}):
        meta = _get(client, world.token("viewer"), {**filters, "per_page": 25})["meta"]["pagination"]
        expected = 65 if filters == {"type": "Call"} else 60
        assert (meta["total_records"], meta["total_exact"], meta["total_pages"]) == (expected, True, 3)
        assert meta["next_cursor"] is not None  # the page was full: the total was counted


def test_the_capped_count_stops_reading_at_its_10001st_match(client, world):
    """The count numbers its matches and stops at the cap: of 12,000 matches it reads 10,001 (and
    the scan hands over at most one more), with no sort. Sequential scans are priced out as in
    test_indexes.py: here the site is nearly the whole table, where reading it in order is the
    planner's right choice (and stops at the cap too)."""
    from chalicelib.interactions import queries
    from tests.interactions.test_indexes import _filtered, _nodes, _query, _sql

    _many(world.site_a, 12_000, "Quarterly review")
    with session_scope() as session:
        session.execute(text("ANALYZE interactions"))
    meta = _get(client, world.token("viewer"), {"search": "quarterly"})["meta"]["pagination"]
    assert (meta["total_records"], meta["total_exact"]) == (10_000, False)
    for filters in ({"search": "quarterly"}, {"title": "quarterly"}, {"type": "Call"}):
        query = _query(**filters)
        rows = _filtered(query)
        statement = queries.capped_count(rows).params(site_id=world.site_a)
        with session_scope() as session:
            assert session.execute(statement).one()[0] == 10_001
            session.execute(text("SET LOCAL enable_seqscan = off"))
            document = session.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + _sql(statement))).scalar_one()
        nodes = _nodes(document[0]["Plan"])
        assert not [
            n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "interactions"
        ]
        assert not [n for n in nodes if "Sort" in n["Node Type"]], filters
        window = next(n for n in nodes if n["Node Type"] == "WindowAgg")
        assert window["Actual Rows"] == 10_001
        read = [n["Actual Rows"] for n in nodes if n.get("Relation Name") == "interactions"]
        assert read and max(read) <= 10_002, (filters, read)
