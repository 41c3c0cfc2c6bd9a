"""The benchmark's scenarios: one HTTP request each, against the biggest site of the seeded data.

Filter and search terms are read from the data (a real title word, lead, location, date range), so
they match what the seed produced. The rare search term is a word that occurs in a handful of rows
(added once, outside the timed region, if the data has none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.events import Call

# The costliest terms the search rule accepts (three ASCII letters or digits in a row): each
# scenario's plan check requires a trigram index and no sequential scan. On seed-demo's text every
# trigram of "with of" and "ith wit" occurs in nearly every row while the terms match none, so the
# index hands back the whole site to re-check; "wit" matches every row (the count reads them all);
# the shortest term absent from the data; punctuation around one short word, up to the 255-character
# limit; non-ASCII letters beside ASCII ones (word characters under a UTF-8 LC_CTYPE, separators
# under C); the substring filters' equivalents.
WORST_TERMS = [
    ("search", "with of"),
    ("search", "ith wit"),
    ("search", "wit"),
    ("search", "q7z"),
    ("search", "%%%wit%%%"),
    ("search", "%" * 126 + "with" + "%" * 125),
    ("search", "._-q7z-_."),
    ("search", "Müller of"),
    ("search", "éq7zé"),
    ("search", "東京 wit"),
    ("title", "ate - "),
    ("lead", "ana"),
    ("location", "oom r"),
]
SORTS = ["start_datetime", "end_datetime", "title", "type", "lead", "location", "created_at", "updated_at"]
RARE_WORD = "Zanzibar"
RARE_ROWS = 5
BENCH_TITLE = "Benchmark row"
GENERATED = {
    "search_text"
}  # computed by the database (migration 0010): never written  # rows the write scenarios create; removed afterwards


@dataclass
class Scenario:
    name: str
    call: Call | Callable[[], Call]
    group: str  # "auth", "finder", "audit", "write", "meta"
    iterations: int | None = None  # None: the run's default
    # Run (untimed) before every handler and floor execution, to put the database back into the
    # state the captured statements expect (writes).
    reset: Callable[[], None] | None = None
    # Parameter values to swap in the floor's replay (e.g. another row's id).
    substitute: dict[Any, Any] = field(default_factory=dict)
    checks_plan: bool = False  # an EXPLAIN step checks this request's queries
    # A search whose statements must use a trigram index (default: scenarios named "search ...").
    # A term in most rows is read through the sort's index instead, up to the page or the cap.
    wants_trigram: bool | None = None
    plan_table: str = "interactions"  # the table whose reads the EXPLAIN step checks


@dataclass
class Fixture:
    """What the scenarios need to know about the data."""

    site_id: int
    site_rows: int
    interaction_id: int
    frequent_words: list[str]  # the words in most of the site's rows, most frequent first
    title_term: str
    lead_term: str
    location_term: str
    common_term: str
    rare_term: str
    start_date: str
    end_date: str


def _one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).first()


def prepare_fixture(engine: Engine, *, site_id: int, site_rows: int) -> Fixture:
    with engine.begin() as conn:
        rare = conn.execute(
            text("SELECT count(*) FROM interactions WHERE site_id = :s AND title LIKE :p"),
            {"s": site_id, "p": f"%{RARE_WORD}%"},
        ).scalar_one()
        if rare == 0:
            conn.execute(
                text(
                    "INSERT INTO interactions (site_id, title, type, lead, start_datetime, timezone, description)"
                    " SELECT :s, :t || ' ' || g, 'Meeting', 'Ana Lima', now() - g * interval '9 days',"
                    " 'Africa/Dar_es_Salaam', 'Shipping contract review'"
                    " FROM generate_series(1, :n) AS g"
                ),
                {"s": site_id, "t": f"Port visit in {RARE_WORD}", "n": RARE_ROWS},
            )
    # A row in the middle of the site's history: its words and names are typical of the data.
    middle = _one(
        engine,
        """
        SELECT id, title, lead, location FROM interactions
        WHERE site_id = :s AND location IS NOT NULL
        ORDER BY start_datetime DESC, id DESC OFFSET :o LIMIT 1""",
        s=site_id,
        o=site_rows // 2,
    )
    span = _one(
        engine,
        "SELECT min(start_datetime), max(start_datetime) FROM interactions WHERE site_id = :s",
        s=site_id,
    )
    first_word = middle.title.split()[0]
    # The words in most rows (of a sample of the site's): the broadest terms a user can send.
    with engine.connect() as conn:
        frequent = conn.execute(
            text(
                "SELECT w FROM (SELECT id, regexp_split_to_table(lower(title || ' ' || lead || ' ' ||"
                " coalesce(location, '') || ' ' || coalesce(description, '') || ' ' || coalesce(notes, '')),"
                " '[^[:alnum:]]+') AS w FROM (SELECT * FROM interactions WHERE site_id = :s ORDER BY id"
                " LIMIT 20000) s) x WHERE length(w) >= 3 GROUP BY w ORDER BY count(DISTINCT id) DESC, w LIMIT 3"
            ),
            {"s": site_id},
        ).scalars()
        frequent_words = list(frequent)
    return Fixture(
        site_id=site_id,
        site_rows=site_rows,
        interaction_id=middle.id,
        frequent_words=frequent_words,
        title_term=first_word.lower(),
        lead_term=middle.lead.split()[-1].lower(),
        location_term=middle.location.lower()[: max(4, len(middle.location) // 2)],
        common_term="review",
        rare_term=RARE_WORD.lower(),
        # a month at each end of the site's history
        start_date=(span.max - timedelta(days=30)).date().isoformat(),
        end_date=(span.min + timedelta(days=30)).date().isoformat(),
    )


def _create_body(n: int = 0) -> dict[str, Any]:
    return {
        "title": f"{BENCH_TITLE} {n}",
        "type": "Meeting",
        "lead": "Bench Lead",
        "start_datetime": "2025-03-04T10:00:00",
        "timezone": "Europe/Paris",
        "end_datetime": "2025-03-04T11:30:00",
        "location": "Conference Room A",
        "description": "Quarterly review of the benchmark account",
        "notes": None,
    }


class RowState:
    """Snapshot one row and put it back (untimed), so that a write scenario's handler and floor
    both start from the same row in the same state."""

    def __init__(self, engine: Engine, interaction_id: int) -> None:
        self.engine = engine
        self.id = interaction_id
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM interactions WHERE id = :i"), {"i": interaction_id})
            self.columns = [c for c in row.keys() if c not in GENERATED]
            self.values = {k: v for k, v in zip(row.keys(), row.first(), strict=True) if k not in GENERATED}

    def restore(self) -> None:
        names = [c for c in self.columns if c != "id"]
        assignments = ", ".join(f'"{c}" = :{c}' for c in names)
        columns = ", ".join(f'"{c}"' for c in self.columns)
        placeholders = ", ".join(f":{c}" for c in self.columns)
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO interactions ({columns}) VALUES ({placeholders})"
                    f" ON CONFLICT (id) DO UPDATE SET {assignments}"
                ),
                self.values,
            )


def make_bench_row(engine: Engine, site_id: int, user_id: int) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO interactions (site_id, title, type, lead, start_datetime, timezone, location,"
                " created_by) VALUES (:s, :t, 'Call', 'Bench Lead', now() - interval '3 days', 'UTC',"
                " 'Teams', :u) RETURNING id"
            ),
            {"s": site_id, "t": f"{BENCH_TITLE} target", "u": user_id},
        ).scalar_one()


def remove_bench_rows(engine: Engine) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("DELETE FROM interactions WHERE title LIKE :p"), {"p": f"{BENCH_TITLE}%"}
        ).rowcount


# A short two-word term of common words: every trigram of it in most rows, the phrase in few.
TWO_WORD_TERM = "of the"
CURSOR_DEPTH = 50_000
# Deep pages and cursors: page 400 x 25 (the deepest page by number) and a cursor page 50,000 rows
# in, each in these orders, against page 1 of the same order.
DEEP_ORDERS = [("start_datetime", "desc"), ("title", "asc"), ("location", "desc")]


def cursor_at(engine: Engine, site_id: int, sort_by: str, direction: str, depth: int, total: int) -> str:
    """The cursor a walk would hold after `depth` rows of the site in this order (sealed by the
    app's own code, with this process's signing key)."""
    from chalicelib.interactions import queries, service
    from chalicelib.interactions.schemas import InteractionQuery
    from chalicelib.kit.pagination import Position, seal

    key = f'lower({sort_by}) COLLATE "C"' if sort_by in queries.TEXT_SORTS else sort_by
    nulls = " NULLS LAST" if sort_by in queries.NULLABLE_SORTS else ""
    row = _one(
        engine,
        f"SELECT * FROM interactions WHERE site_id = :s ORDER BY {key} {direction}{nulls}, id {direction}"
        " OFFSET :d LIMIT 1",
        s=site_id,
        d=depth - 1,
    )
    query = InteractionQuery.model_validate({"sort_by": sort_by, "sort_direction": direction})
    position = Position(queries.cursor_key(sort_by, row), row.id, total, True)
    return seal(service.binding(site_id, query), position)


def build(
    fx: Fixture,
    *,
    routes: dict[str, Any],
    login_body: dict[str, str],
    token: str,
    engine: Engine,
    user_id: int,
) -> list[Scenario]:
    item_route = next(r for r in routes if r.startswith("/api/interactions/{"))
    item_param = item_route.rsplit("{", 1)[1].rstrip("}")

    def listing(query: str = "") -> Call:
        return Call("GET", f"/api/interactions{query}", "/api/interactions", token=token)

    def item(method: str, interaction_id: int, body: Any = None, expect: int = 200) -> Call:
        return Call(
            method,
            f"/api/interactions/{interaction_id}",
            item_route,
            path_params={item_param: str(interaction_id)},
            body=body,
            token=token,
            expect=expect,
        )

    site_route = next((r for r in routes if r.startswith("/api/sites/{") and r.count("/") == 3), None)

    scenarios = [
        Scenario(
            "login",
            Call("POST", "/api/auth/login", "/api/auth/login", body=login_body),
            "auth",
            iterations=15,
        ),
        Scenario("me", Call("GET", "/api/auth/me", "/api/auth/me", token=token), "auth"),
        Scenario("health", Call("GET", "/api/health", "/api/health"), "meta"),
        Scenario("get by id", item("GET", fx.interaction_id), "finder"),
        Scenario("list (default)", listing(), "finder", checks_plan=True),
        Scenario(
            f"filter title={fx.title_term}", listing(f"?title={fx.title_term}"), "finder", checks_plan=True
        ),
        Scenario(f"filter lead={fx.lead_term}", listing(f"?lead={fx.lead_term}"), "finder", checks_plan=True),
        Scenario(
            f"filter location={fx.location_term}",
            listing(f"?location={fx.location_term.replace(' ', '+')}"),
            "finder",
            checks_plan=True,
        ),
        Scenario("filter type=Meeting", listing("?type=Meeting"), "finder", checks_plan=True),
        Scenario(
            f"filter start_date={fx.start_date}",
            listing(f"?start_date={fx.start_date}"),
            "finder",
            checks_plan=True,
        ),
        Scenario(
            f"filter end_date={fx.end_date}", listing(f"?end_date={fx.end_date}"), "finder", checks_plan=True
        ),
        Scenario(
            f"search common ({fx.common_term})",
            listing(f"?search={fx.common_term}"),
            "finder",
            checks_plan=True,
        ),
        Scenario(
            f"search rare ({fx.rare_term})", listing(f"?search={fx.rare_term}"), "finder", checks_plan=True
        ),
    ]
    for name, term in WORST_TERMS:
        shown = term if len(term) <= 24 else f"{term[:8]}...{term[-8:]} ({len(term)} chars)"
        # Named "search ..." so that the plan check requires a trigram index for the filters too.
        # Each costs up to a pass over the site's rows: fewer timed requests than the others.
        scenarios.append(
            Scenario(
                f"search worst {name}={shown}",
                listing(f"?{name}={quote(term, safe='')}"),
                "finder",
                iterations=10,
                checks_plan=True,
            )
        )
    for sort in SORTS:
        for direction in ("asc", "desc"):
            scenarios.append(
                Scenario(
                    f"sort {sort} {direction}",
                    listing(f"?sort_by={sort}&sort_direction={direction}"),
                    "finder",
                    checks_plan=True,
                )
            )
    # The broadest terms, each timed as the first request after a write (the write, untimed, gives
    # the site a new change number: no remembered total), so each counts its matches (up to the cap).
    writer = RowState(engine, make_bench_row(engine, fx.site_id, user_id))
    for term in [*fx.frequent_words, TWO_WORD_TERM]:
        scenarios.append(
            Scenario(
                f"search broad after a write ({term})",
                listing(f"?search={quote(term)}"),
                "finder",
                reset=writer.restore,
                checks_plan=True,
                wants_trigram=False,
            )
        )
    for sort_by, direction in DEEP_ORDERS:
        default = (sort_by, direction) == ("start_datetime", "desc")
        order = "" if default else f"&sort_by={sort_by}&sort_direction={direction}"
        named = "" if default else f", {sort_by} {direction}"
        if not default:  # the default order's page 1 is "list (default)"
            scenarios.append(
                Scenario(
                    f"page 1 ({sort_by} {direction})", listing(f"?{order[1:]}"), "finder", checks_plan=True
                )
            )
        scenarios.append(
            Scenario(f"deep page (page=400{named})", listing(f"?page=400{order}"), "finder", checks_plan=True)
        )
        # A small data set (--rows) has no row 50,000 deep: the walk then stops half-way down the site.
        depth = min(CURSOR_DEPTH, max(1, fx.site_rows // 2))
        cursor = cursor_at(engine, fx.site_id, sort_by, direction, depth, fx.site_rows)
        scenarios.append(
            Scenario(
                f"cursor page at depth {depth:,} ({sort_by} {direction})",
                listing(f"?cursor={cursor}{order}"),
                "finder",
                checks_plan=True,
            )
        )
    if site_route:
        param = site_route.rsplit("{", 1)[1].rstrip("}")
        scenarios.append(
            Scenario(
                "site detail (counts)",
                Call(
                    "GET",
                    f"/api/sites/{fx.site_id}",
                    site_route,
                    path_params={param: str(fx.site_id)},
                    token=token,
                ),
                "finder",
            )
        )
    # The audit trail's reads, with a million events in the table (the seed records one per row).
    audit_route = f"{site_route}/audit" if site_route else None
    if audit_route in routes:
        param = audit_route.split("{", 1)[1].split("}", 1)[0]
        scenarios.append(
            Scenario(
                "site audit (first page)",
                Call(
                    "GET",
                    f"/api/sites/{fx.site_id}/audit",
                    audit_route,
                    path_params={param: str(fx.site_id)},
                    token=token,
                ),
                "audit",
                checks_plan=True,
                plan_table="audit_events",
            )
        )
    history_route = f"{item_route}/history"
    if history_route in routes:
        scenarios.append(
            Scenario(
                "interaction history",
                Call(
                    "GET",
                    f"/api/interactions/{fx.interaction_id}/history",
                    history_route,
                    path_params={item_param: str(fx.interaction_id)},
                    token=token,
                ),
                "audit",
                checks_plan=True,
                plan_table="audit_events",
            )
        )

    scenarios.append(
        Scenario(
            "create",
            Call(
                "POST", "/api/interactions", "/api/interactions", body=_create_body(), token=token, expect=201
            ),
            "write",
        )
    )

    update_row = RowState(engine, make_bench_row(engine, fx.site_id, user_id))
    scenarios.append(
        Scenario(
            "update",
            item("PUT", update_row.id, {"title": f"{BENCH_TITLE} updated", "notes": "Moved"}),
            "write",
            reset=update_row.restore,
        )
    )

    delete_row = RowState(engine, make_bench_row(engine, fx.site_id, user_id))
    scenarios.append(Scenario("delete", item("DELETE", delete_row.id), "write", reset=delete_row.restore))
    return scenarios
