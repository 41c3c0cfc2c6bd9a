"""Realistic demo interactions, streamed into PostgreSQL with COPY (a million rows in minutes).

Rows are generated lazily and sent in chunks through pg8000's COPY FROM STDIN inside the caller's
transaction, so a seed is stored whole or not at all. The first site gets the largest share
(`site_shares`), which gives benchmarks one big tenant among ordinary ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.interactions.times import zone
from chalicelib.models import INTERACTION_TYPES

FIRST_SITE_SHARE = 0.2
CHUNK_ROWS = 2_000  # rows per COPY data message
# From this many rows on, the secondary indexes are dropped and built again after the load.
REBUILD_THRESHOLD = 50_000

FIRST_NAMES = [
    "John",
    "Maria",
    "Wei",
    "Aisha",
    "Lars",
    "Chloé",
    "Kenji",
    "Olusegun",
    "Priya",
    "Sofia",
    "Mateo",
    "Hannah",
    "Ivan",
    "Fatima",
    "Noah",
    "Yuki",
    "Amara",
    "Liam",
    "Zara",
    "Diego",
    "Ingrid",
    "Omar",
    "Grace",
    "Rahul",
    "Elena",
    "Tomás",
    "Leila",
    "Finn",
    "Mei",
    "Kwame",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Chen",
    "Khan",
    "Nilsson",
    "Dubois",
    "Tanaka",
    "Adeyemi",
    "Patel",
    "Rossi",
    "Müller",
    "Novak",
    "Kowalski",
    "O'Brien",
    "Silva",
    "Haddad",
    "Johansson",
    "Kim",
    "Okafor",
    "Moreau",
    "Schmidt",
    "Nguyen",
    "Ivanova",
    "Costa",
    "Yilmaz",
    "Fischer",
    "Mensah",
    "Larsen",
    "Brown",
    "Sato",
]
COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Foods",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Blue Yonder Air",
    "Litware",
    "Proseware",
    "Adventure Works",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Fourth Coffee",
    "Margie's Travel",
    "Lucerne Publishing",
]
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
]
LOCATIONS = [
    "Conference Room A",
    "Conference Room B",
    "Boardroom",
    "Client HQ",
    "Zoom",
    "Microsoft Teams",
    "Google Meet",
    "Phone",
    "Cafeteria",
    "Berlin office",
    "London office",
    "Singapore office",
    "Remote",
    "Trade fair booth 12",
    "Hotel lobby",
]
SUBJECTS = {
    "Meeting": [
        "Quarterly review",
        "Kick-off",
        "Steering committee",
        "Account planning",
        "Roadmap review",
        "Contract negotiation",
        "Budget planning",
        "Partnership talks",
    ],
    "Call": [
        "Discovery call",
        "Follow-up call",
        "Pricing call",
        "Support escalation",
        "Reference call",
        "Renewal call",
        "Check-in",
    ],
    "Email": [
        "Proposal sent",
        "Pricing questions",
        "Invoice query",
        "Meeting recap",
        "Introduction",
        "Contract draft",
        "Feature request",
    ],
    "Update": [
        "Status update",
        "Project milestone",
        "Delivery delay",
        "Scope change",
        "Go-live update",
        "Risk review",
    ],
    "Review": [
        "Design review",
        "Security review",
        "Performance review",
        "Contract review",
        "Post-mortem",
        "Quality audit",
    ],
    "Training": [
        "Onboarding session",
        "Product training",
        "Admin workshop",
        "API workshop",
        "Train the trainer",
        "Compliance training",
    ],
}
OUTCOMES = [
    "agreed next steps",
    "asked for a revised quote",
    "wants a demo for the wider team",
    "raised concerns about the timeline",
    "confirmed the budget",
    "needs legal sign-off",
    "is comparing two vendors",
    "requested references",
    "will decide next month",
    "shared the requirements document",
]
NOTES = [
    "Follow up next week.",
    "Send the deck.",
    "Waiting on legal.",
    "Loop in the solutions engineer.",
    "Book a room for the workshop.",
    "Update the forecast.",
    "Check the SLA terms.",
    "Ask finance about payment terms.",
]
COLUMNS = (
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
)
COPY_SQL = f"COPY interactions ({', '.join(COLUMNS)}) FROM STDIN"

# COPY's text format: no generated value may hold a tab, a line break or a backslash.
_POOLS = [FIRST_NAMES, LAST_NAMES, COMPANIES, ZONES, LOCATIONS, OUTCOMES, NOTES, *SUBJECTS.values()]
assert not any(set(v) & set("\t\n\r\\") for pool in _POOLS for v in pool)


def site_shares(count: int, sites: int, *, first_share: float = FIRST_SITE_SHARE) -> list[int]:
    """Rows per site: the first site gets `first_share` of them (at least an equal share), the others
    split the rest evenly. 1,000,000 rows over 10 sites: 200,000 then 88,889 or 88,888 each."""
    if sites <= 1:
        return [count]
    first = min(count, max(round(count * first_share), math.ceil(count / sites)))
    rest, extra = divmod(count - first, sites - 1)
    return [first] + [rest + (1 if i < extra else 0) for i in range(sites - 1)]


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class RowMaker:
    """Plausible interactions: a lead from a company, a subject that fits the type, a start in
    office hours of the lead's time zone, searchable words in title, description and notes."""

    def __init__(self, *, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.zones = {name: zone(name) for name in ZONES}

    def row(self, site_id: int, writers: Sequence[int]) -> tuple[Any, ...]:
        rng = self.rng
        kind = rng.choice(INTERACTION_TYPES)
        subject = rng.choice(SUBJECTS[kind])
        lead = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        company = rng.choice(COMPANIES)
        zone_name = rng.choice(ZONES)
        day = (self.now - timedelta(days=rng.randrange(-60, 730))).date()
        local = datetime(day.year, day.month, day.day, rng.randrange(8, 18), rng.choice((0, 15, 30, 45)))
        start = local.replace(tzinfo=self.zones[zone_name]).astimezone(UTC)
        end = (
            start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90, 120))) if rng.random() < 0.85 else None
        )
        location = rng.choice(LOCATIONS) if kind not in ("Email", "Update") or rng.random() < 0.2 else None
        description = (
            f"{subject} with {lead} of {company}: {rng.choice(OUTCOMES)}." if rng.random() < 0.9 else None
        )
        notes = rng.choice(NOTES) if rng.random() < 0.4 else None
        created_by = rng.choice(writers)
        created_at = min(start, self.now) - timedelta(days=rng.randrange(0, 21), seconds=rng.randrange(86400))
        if rng.random() < 0.3:
            updated_at = created_at + timedelta(hours=rng.randrange(1, 24 * 30))
            updated_at, version, updated_by = (
                min(updated_at, self.now),
                rng.randrange(2, 5),
                rng.choice(writers),
            )
        else:
            updated_at, version, updated_by = None, 1, None
        return (
            site_id,
            f"{subject} - {company}",
            kind,
            lead,
            start,
            zone_name,
            end,
            location,
            description,
            notes,
            created_by,
            created_at,
            updated_by,
            updated_at,
            version,
        )


def copy_chunks(
    maker: RowMaker, site_sequence: Sequence[int], writers: dict[int, Sequence[int]], *, progress: Any = None
) -> Iterator[str]:
    """COPY text-format data, CHUNK_ROWS lines at a time."""
    for begin in range(0, len(site_sequence), CHUNK_ROWS):
        sites = site_sequence[begin : begin + CHUNK_ROWS]
        lines = ["\t".join(_copy_value(v) for v in maker.row(site_id, writers[site_id])) for site_id in sites]
        yield "\n".join(lines) + "\n"
        if progress is not None:
            progress.update(len(sites))


def bulk_create(
    session: Any,
    *,
    site_ids: list[int],
    writers: dict[int, Sequence[int]],
    count: int,
    seed: int = 7,
    progress: bool = True,
) -> list[int]:
    """COPY `count` interactions into the sites (shares per `site_shares`) within the session's
    transaction. Returns the rows per site."""
    from tqdm import tqdm

    shares = site_shares(count, len(site_ids))
    if count <= 0:
        return shares
    rng = random.Random(seed)
    sequence = [site for site, share in zip(site_ids, shares, strict=True) for _ in range(share)]
    rng.shuffle(sequence)  # interleaved, as rows of many tenants arrive in a real table
    maker = RowMaker(seed=seed, now=datetime.now(UTC).replace(microsecond=0))
    connection = session.connection()
    # A seed is one long statement: lift the API's per-statement limit for this transaction only.
    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    rebuild = secondary_indexes(connection) if count >= REBUILD_THRESHOLD else []
    for name, _definition in rebuild:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    driver = connection.connection.driver_connection
    with no_read_timeout(driver):
        # smoothing=0: the bar's rate is the average since the start, the one rate of a seed.
        with tqdm(
            total=count, unit="rows", unit_scale=True, desc="interactions", smoothing=0, disable=not progress
        ) as bar:
            driver.cursor().execute(COPY_SQL, stream=copy_chunks(maker, sequence, writers, progress=bar))
        for _name, definition in tqdm(
            rebuild, unit="index", desc="indexes", disable=not progress or not rebuild
        ):
            connection.exec_driver_sql(definition)
    return shares


@contextmanager
def no_read_timeout(driver_connection: Any) -> Iterator[None]:
    """The API's connections give up reading after a few seconds (see db.py); a seed's statements
    run for minutes. Lifted for the block, restored before the connection goes back to the pool."""
    sock = getattr(driver_connection, "_usock", None)  # pg8000's socket (pinned version)
    previous = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(None)
    try:
        yield
    finally:
        if sock is not None:
            sock.settimeout(previous)


def _iso(column: str) -> str:
    """SQL: a timestamptz as the API writes it (UTC, Z, a fraction of a second only when there is one)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_part('microseconds', {column})"
        f"::bigint %% 1000000 = 0 THEN '' ELSE to_char({utc}, '.US') END || 'Z'"
    )


def _created_changes() -> str:
    """SQL: an interaction.created event's `changes` for an interactions row (its non-null fields)."""
    from chalicelib.audit.events import INTERACTION_FIELDS

    parts = []
    for name in INTERACTION_FIELDS:
        value = _iso(name) if name in ("start_datetime", "end_datetime") else name
        parts.append(
            f"CASE WHEN {name} IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object('{name}', "
            f"jsonb_build_object('from', NULL, 'to', {value})) END"
        )
    return " || ".join(parts)


HISTORY_CHANGED_PER_SITE = 3
_FOLLOW_UP = "Follow-up booked."


def record_history(session: Any, *, origin: Any, after_id: int, progress: bool = True) -> int:
    """The seed's own events (it is a command of the operator): interaction.created for every row
    with an id above `after_id`, then a few of them (the first `HISTORY_CHANGED_PER_SITE` of each
    site) changed once more, with their interaction.updated. From REBUILD_THRESHOLD events on, the
    events' secondary indexes are dropped and built again afterwards, as for the rows. Returns the
    events written."""
    from tqdm import tqdm

    connection = session.connection()
    rows = connection.exec_driver_sql(
        "SELECT count(*) FROM interactions WHERE id > %s", (after_id,)
    ).scalar_one()
    if not rows:
        return 0
    rebuild = secondary_indexes(connection, "audit_events") if rows >= REBUILD_THRESHOLD else []
    for name, _definition in rebuild:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    driver = connection.connection.driver_connection
    with no_read_timeout(driver):
        connection.exec_driver_sql(
            f"""
            INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id, target_version, changes)
            SELECT 'cli', %s, site_id, 'interaction.created', 'interaction', id, version,
                   {_created_changes()}
            FROM interactions WHERE id > %s ORDER BY id""",
            (origin.operator, after_id),
        )
        for _name, definition in tqdm(
            rebuild, unit="index", desc="event indexes", disable=not progress or not rebuild
        ):
            connection.exec_driver_sql(definition)
    changed = connection.exec_driver_sql(
        f"""
        WITH picked AS (
            SELECT id, notes FROM (
                SELECT id, notes, row_number() OVER (PARTITION BY site_id ORDER BY id) AS n
                FROM interactions WHERE id > %s) AS numbered
            WHERE n <= {HISTORY_CHANGED_PER_SITE} AND notes IS DISTINCT FROM %s),
        changed AS (
            UPDATE interactions AS i SET notes = %s, version = i.version + 1, updated_at = now(),
                updated_by = NULL
            FROM picked WHERE i.id = picked.id
            RETURNING i.id, i.site_id, i.version, i.notes, picked.notes AS old_notes)
        INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id, target_version, changes)
        SELECT 'cli', %s, site_id, 'interaction.updated', 'interaction', id, version,
               jsonb_build_object('notes', jsonb_build_object('from', old_notes, 'to', notes))
        FROM changed ORDER BY id""",
        (after_id, _FOLLOW_UP, _FOLLOW_UP, origin.operator),
    ).rowcount
    return int(rows + changed)


def secondary_indexes(connection: Any, table: str = "interactions") -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index on `table` that backs no constraint.

    A big seed drops them, loads, and creates them again from these exact definitions in the same
    transaction: building an index once is many times faster than maintaining it row by row
    (the trigram GIN indexes above all). The table stays locked until the seed commits.
    """
    rows = connection.exec_driver_sql(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY c.relname",
        (table,),
    ).all()
    return [(name, definition) for name, definition in rows]
