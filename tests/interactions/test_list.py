"""GET /api/interactions: search, filters, sorting and pagination as API.md describes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.interactions.helpers import error, fields, insert_rows, send

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def listing(client, world, query="", token="editor"):
    response = send(client, "GET", f"/api/interactions{query}", world.token(token))
    assert response.status_code == 200, response.json_body
    return response.json_body


def ids(body):
    return [row["id"] for row in body["data"]["interactions"]]


def test_default_order_is_newest_start_first_with_pagination_meta(client, world):
    made = insert_rows(world.site_a, [{"start_datetime": T0 + timedelta(hours=i)} for i in range(3)])
    body = listing(client, world)
    assert ids(body) == made[::-1]
    assert body["meta"] == {
        "pagination": {
            "page": 1,
            "per_page": 25,
            "total_pages": 1,
            "total_records": 3,
            "total_exact": True,
            "next_cursor": None,
        }
    }


def test_rows_are_the_interaction_representation(client, world):
    insert_rows(world.site_a, [{"title": "Client Meeting"}])
    row = listing(client, world)["data"]["interactions"][0]
    assert list(row) == [
        "id",
        "site_id",
        "title",
        "type",
        "lead",
        "start_datetime",
        "timezone",
        "end_datetime",
        "location",
        "description",
        "notes",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "version",
    ]
    assert row["start_datetime"] == "2024-01-01T00:00:00Z"


def test_nothing_matching_gives_zero_total_pages(client, world):
    body = listing(client, world, "?search=nothing-like-this")
    assert body["data"]["interactions"] == []
    assert body["meta"]["pagination"] == {
        "page": 1,
        "per_page": 25,
        "total_pages": 0,
        "total_records": 0,
        "total_exact": True,
        "next_cursor": None,
    }


def test_pages_split_the_rows_and_count_them(client, world):
    made = insert_rows(world.site_a, [{"start_datetime": T0 + timedelta(minutes=i)} for i in range(7)])
    body = listing(client, world, "?per_page=3&page=2&sort_direction=asc")
    assert ids(body) == made[3:6]
    pagination = body["meta"]["pagination"]
    assert pagination.pop("next_cursor")  # page 3 follows
    assert pagination == {"page": 2, "per_page": 3, "total_pages": 3, "total_records": 7, "total_exact": True}
    last = listing(client, world, "?per_page=3&page=3&sort_direction=asc")
    assert ids(last) == made[6:]
    assert last["meta"]["pagination"]["total_records"] == 7


def test_a_page_past_the_end_is_empty_with_correct_meta(client, world):
    insert_rows(world.site_a, [{} for _ in range(4)])
    body = listing(client, world, "?per_page=3&page=9")
    assert body["data"]["interactions"] == []
    assert body["meta"]["pagination"] == {
        "page": 9,
        "per_page": 3,
        "total_pages": 2,
        "total_records": 4,
        "total_exact": True,
        "next_cursor": None,
    }


def test_per_page_allows_up_to_100(client, world):
    insert_rows(world.site_a, [{} for _ in range(101)])
    body = listing(client, world, "?per_page=100")
    assert len(body["data"]["interactions"]) == 100
    assert body["meta"]["pagination"]["total_pages"] == 2


@pytest.mark.parametrize(
    "query,field",
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=-1", "per_page"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("page=99999999999", "page"),
        ("sort_by=password_hash", "sort_by"),
        ("sort_by=id", "sort_by"),
        ("sort_direction=up", "sort_direction"),
        ("type=Lunch", "type"),
        ("type=meeting", "type"),
        ("start_date=2024-02-30", "start_date"),
        ("end_date=yesterday", "end_date"),
        ("start_date=2024-05-01T25:00", "start_date"),
        ("search=" + "x" * 256, "search"),
        ("title=a%00b", "title"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client, world, query, field):
    response = send(client, "GET", f"/api/interactions?{query}", world.token("editor"))
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {field}


def test_every_bad_parameter_is_reported_at_once(client, world):
    response = send(
        client,
        "GET",
        "/api/interactions?page=0&per_page=500&sort_by=x&sort_direction=y",
        world.token("editor"),
    )
    assert fields(response) == {"page", "per_page", "sort_by", "sort_direction"}


def test_a_known_parameter_given_twice_is_a_400(client, world):
    response = send(client, "GET", "/api/interactions?page=1&page=2", world.token("editor"))
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"page"}


def test_parameters_starting_with_an_underscore_are_ignored(client, world):
    insert_rows(world.site_a, [{}])
    assert len(ids(listing(client, world, "?_=12345&_cache=x"))) == 1


@pytest.mark.parametrize(
    "query,named",
    [
        ("?pageSize=10", {"pageSize"}),
        ("?sort_dir=asc", {"sort_dir"}),
        ("?sortField=title", {"sortField"}),
        ("?foo=bar&per_page=0", {"foo", "per_page"}),
    ],
)
def test_an_unknown_parameter_is_a_400_naming_it_with_every_other_problem(client, world, query, named):
    response = send(client, "GET", f"/api/interactions{query}", world.token("editor"))
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == named


def test_an_inverted_date_range_is_a_400_naming_end_date(client, world):
    response = send(
        client, "GET", "/api/interactions?start_date=2024-05-02&end_date=2024-05-01", world.token("editor")
    )
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {"end_date"}


# --- search and filters ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "lead", "location", "description", "notes"])
def test_search_looks_in_each_text_field_case_insensitively(client, world, field):
    wanted, _other = insert_rows(world.site_a, [{field: "About the Zebra project"}, {}])
    assert ids(listing(client, world, "?search=zEBRA")) == [wanted]


def test_search_looks_in_the_type(client, world):
    wanted, _other = insert_rows(world.site_a, [{"type": "Training"}, {"type": "Call"}])
    assert ids(listing(client, world, "?search=train")) == [wanted]


def test_search_does_not_match_across_two_fields(client, world):
    insert_rows(world.site_a, [{"title": "Budget", "type": "Call", "lead": "Ann"}])
    assert ids(listing(client, world, "?search=budget%20call")) == []
    assert len(ids(listing(client, world, "?search=budget"))) == 1


SEARCH_ROWS = [
    {"title": "Budget", "type": "Call", "lead": "Ann"},
    {"title": "Quarterly Review", "type": "Meeting", "lead": "Zed Okafor", "location": "Room 4B"},
    {
        "title": "Visit",
        "type": "Email",
        "lead": "Bo",
        "description": "Renewal at İstanbul",
        "notes": "ANN%_x",
    },
    {"title": "Kickoff", "type": "Training", "lead": "Lee", "notes": "budget CALL"},
]
SEARCHED = ("title", "type", "lead", "location", "description", "notes")


@pytest.mark.parametrize(
    "term",
    [
        "get",
        "BUDGET",
        "cal",
        "all",
        "ann",
        "ann%_",
        "zed",
        "oom 4b",
        "rly rev",
        "okafor",
        "view",
        "renewal at",
        "call ann",
        "Ann Qua",
    ],
)
def test_search_finds_exactly_the_rows_with_a_field_that_contains_the_term(client, world, term):
    """With or without a space in the term, the rows are those with one field containing it (the
    document alone answers a term without a space, which cannot span two fields; a term with one
    is also checked field by field)."""
    made = insert_rows(world.site_a, SEARCH_ROWS)
    expected = [
        made[i]
        for i, row in enumerate(SEARCH_ROWS)
        if any(term.lower() in (row.get(name) or "").lower() for name in SEARCHED)
    ]
    found = ids(listing(client, world, f"?search={quote(term)}&sort_by=created_at&sort_direction=asc"))
    assert sorted(found) == sorted(expected), (term, found, expected)


def test_only_a_term_with_a_space_is_checked_field_by_field():
    """What the rule above costs: the per-field re-check (six ILIKEs a row) runs only for a term
    that could span two fields."""
    from types import SimpleNamespace

    from sqlalchemy.dialects import postgresql

    from chalicelib.interactions import queries

    def sql(term):
        spanning = queries.spans_fields(SimpleNamespace(search=term))
        statements = (
            queries.filtered_count(("search",), spanning),
            queries.folded_page(("search",), "start_datetime", "desc", None, spanning),
        )
        return " ".join(str(s.compile(dialect=postgresql.dialect())) for s in statements)

    assert "ILIKE" not in sql("budget").upper()
    assert "ILIKE" in sql("budget call").upper()


@pytest.mark.parametrize(
    "term,expected",
    [
        ("100%", "100% sure"),
        ("abc_", "abc_def"),
        ("_def", "abc_def"),
        ("back\\", "back\\slash"),
        ("100% s", "100% sure"),
    ],
)
def test_like_wildcards_in_search_terms_match_literally(client, world, term, expected):
    titles = ["100% sure", "100 sure", "abc_def", "abcxdef", "back\\slash", "backslash"]
    made = dict(zip(titles, insert_rows(world.site_a, [{"title": t} for t in titles]), strict=True))
    for name in ("search", "title"):
        assert ids(listing(client, world, f"?{name}={quote(term)}")) == [made[expected]]


# Terms the trigram index cannot answer under any LC_CTYPE: no three letters or digits in a row of
# a script the database indexes (the test database's LC_CTYPE is UTF-8, as RDS's is).
UNSEARCHABLE = [
    "%",
    "%" * 255,
    "_",
    ".",
    "\\",
    "ab",
    "a b c",
    "0%",
    "a_",
    "...",
    "a.b.c",
    "1-2-3",
    "é",
    "Łó",
    "東京",
    "e\u0301e\u0301e\u0301",
    "²³¹",
    "½½½",
    "\U0001d518\U0001d52b\U0001d526",
]


@pytest.mark.parametrize("term", UNSEARCHABLE)
@pytest.mark.parametrize("name", ["search", "title", "lead", "location"])
def test_a_term_without_three_letters_or_digits_in_a_row_is_a_400_naming_it(client, world, name, term):
    insert_rows(world.site_a, [{"title": term, "lead": term[:100], "location": term}])
    response = send(client, "GET", f"/api/interactions?{name}={quote(term)}", world.token("editor"))
    assert error(response) == (400, "VALIDATION_ERROR")
    assert response.json_body["error"]["details"] == [
        {
            "field": name,
            "message": "must contain at least three letters or digits in a row (of a script the database "
            "indexes: Latin, Greek, Cyrillic, Hebrew, Arabic, Han, ...), or be empty for no filter",
        }
    ]


def test_every_unsearchable_term_is_named_at_once(client, world):
    response = send(
        client,
        "GET",
        "/api/interactions?search=%25&title=ab&lead=..&location=x&per_page=0",
        world.token("editor"),
    )
    assert fields(response) == {"search", "title", "lead", "location", "per_page"}


@pytest.mark.parametrize("term", ["", "%20%20", "%09"])
def test_an_empty_or_blank_term_is_no_filter(client, world, term):
    insert_rows(world.site_a, [{}, {}])
    for name in ("search", "title", "lead", "location"):
        assert len(ids(listing(client, world, f"?{name}={term}"))) == 2


@pytest.mark.parametrize(
    "term,title",
    [
        ("abc", "xabcx"),
        ("A1b", "za1bz"),
        ("007", "Agent 007"),
        ("%%%abc%%%", "1 %%%ABC%%% 2"),
        ("._-abc-_.", "x._-abc-_.x"),
        ("Müller", "Ivan Müller"),
        ("Café Zoo", "the café zoo"),
        ("東京 abc", "東京 ABC"),
        ("ｘabcｘ", "ｘabcｘ"),
        # Every script the database indexes (a UTF-8 LC_CTYPE), case-insensitively where it has case.
        ("東京都", "東京都庁 visit"),
        ("ΣΟΦΊΑ", "Meeting with Σοφία"),
        ("σοφία", "MEETING WITH ΣΟΦΊΑ"),
        ("ŁÓDŹ", "Łódź office"),
        ("łódź", "ŁÓDŹ OFFICE"),
        ("שלום", "ברכת שלום"),
        ("Москва", "офис москва"),
        ("١٢٣", "room ١٢٣"),
    ],
)
def test_a_term_with_three_letters_or_digits_in_a_row_is_searched_for(client, world, term, title):
    wanted, _other = insert_rows(world.site_a, [{"title": title}, {"title": "Plain"}])
    for name in ("search", "title"):
        assert ids(listing(client, world, f"?{name}={quote(term)}")) == [wanted]


@pytest.mark.parametrize("name", ["title", "lead", "location"])
def test_substring_filters_apply_to_their_own_field(client, world, name):
    wanted, _elsewhere, _none = insert_rows(
        world.site_a, [{name: "The Harbour view"}, {"description": "harbour"}, {}]
    )
    assert ids(listing(client, world, f"?{name}=HARBOUR")) == [wanted]


def test_filters_combine(client, world):
    wanted, *_ = insert_rows(
        world.site_a,
        [
            {"title": "Renewal", "lead": "Ann", "type": "Call"},
            {"title": "Renewal", "lead": "Bob", "type": "Call"},
            {"title": "Renewal", "lead": "Ann", "type": "Email"},
        ],
    )
    assert ids(listing(client, world, "?title=renew&lead=ann&type=Call")) == [wanted]


def test_type_is_an_exact_filter(client, world):
    call, _email = insert_rows(world.site_a, [{"type": "Call"}, {"type": "Email"}])
    assert ids(listing(client, world, "?type=Call")) == [call]


def test_an_empty_filter_matches_everything(client, world):
    insert_rows(world.site_a, [{}, {}])
    assert len(ids(listing(client, world, "?search=&title=%20"))) == 2


def test_bare_dates_cover_whole_utc_days(client, world):
    starts = [
        datetime(2024, 4, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 5, 2, tzinfo=UTC),
    ]
    made = insert_rows(world.site_a, [{"start_datetime": s} for s in starts])
    body = listing(client, world, "?start_date=2024-05-01&end_date=2024-05-01&sort_direction=asc")
    assert ids(body) == made[1:3]


def test_date_bounds_with_an_offset_select_a_local_day(client, world):
    # 2024-05-01 in New York (UTC-4) runs from 04:00Z to 03:59:59Z the next day.
    starts = [
        datetime(2024, 5, 1, 3, 59, tzinfo=UTC),
        datetime(2024, 5, 1, 4, 0, tzinfo=UTC),
        datetime(2024, 5, 2, 3, 59, tzinfo=UTC),
        datetime(2024, 5, 2, 4, 0, tzinfo=UTC),
    ]
    made = insert_rows(world.site_a, [{"start_datetime": s} for s in starts])
    query = (
        "?start_date=2024-05-01T00:00:00-04:00&end_date=2024-05-01T23:59:59.999999-04:00&sort_direction=asc"
    )
    assert ids(listing(client, world, query.replace("+", "%2B"))) == made[1:3]


def test_start_and_end_date_alone_are_inclusive_bounds(client, world):
    early, late = insert_rows(
        world.site_a, [{"start_datetime": T0}, {"start_datetime": T0 + timedelta(days=2)}]
    )
    assert ids(listing(client, world, "?start_date=2024-05-02")) == [late]
    assert ids(listing(client, world, "?end_date=2024-05-01")) == [early]


# --- sorting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort_by", ["title", "lead", "location"])
def test_text_sorts_ignore_case(client, world, sort_by):
    made = insert_rows(world.site_a, [{sort_by: v} for v in ("banana", "Apple", "cherry", "apricot")])
    asc = ids(listing(client, world, f"?sort_by={sort_by}&sort_direction=asc"))
    assert asc == [made[1], made[3], made[0], made[2]]
    desc = ids(listing(client, world, f"?sort_by={sort_by}&sort_direction=desc"))
    assert desc == asc[::-1]


def test_sort_by_type_follows_the_type_names(client, world):
    made = insert_rows(world.site_a, [{"type": t} for t in ("Update", "Call", "Meeting")])
    assert ids(listing(client, world, "?sort_by=type&sort_direction=asc")) == [made[1], made[2], made[0]]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_ties_are_broken_by_id_in_the_same_direction(client, world, direction):
    made = insert_rows(world.site_a, [{"title": "Same"} for _ in range(5)])
    got = ids(listing(client, world, f"?sort_by=title&sort_direction={direction}"))
    assert got == (made if direction == "asc" else made[::-1])


@pytest.mark.parametrize("sort_by,value", [("end_datetime", T0), ("location", "Room"), ("updated_at", T0)])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_nulls_sort_last_in_both_directions(client, world, sort_by, value, direction):
    with_value, without = insert_rows(
        world.site_a, [{sort_by: value, "start_datetime": T0 - timedelta(days=1)}, {}]
    )
    # `without` sorts first by id in both directions if nulls were not placed last.
    assert ids(listing(client, world, f"?sort_by={sort_by}&sort_direction={direction}")) == [
        with_value,
        without,
    ]


@pytest.mark.parametrize("sort_by", ["start_datetime", "end_datetime", "created_at", "updated_at"])
def test_time_sorts_follow_the_instants(client, world, sort_by):
    made = insert_rows(
        world.site_a, [{"start_datetime": T0, sort_by: T0 + timedelta(hours=h)} for h in (2, 0, 1)]
    )
    assert ids(listing(client, world, f"?sort_by={sort_by}&sort_direction=asc")) == [
        made[1],
        made[2],
        made[0],
    ]
    assert ids(listing(client, world, f"?sort_by={sort_by}")) == [made[0], made[2], made[1]]
