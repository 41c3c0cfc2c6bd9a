"""Load with verification: N concurrent clients for M seconds of mixed creates, updates, deletes,
searches and retried creates (Idempotency-Key), then a check that nothing was lost or misplaced.

    .venv/bin/python -m scripts.load [--clients 8] [--duration 60] [--seed 1]
    .venv/bin/python -m scripts.load --worst-searches [--clients 6] [--listers 2] [--duration 60]
        [--baseline 20] [--database bench_interactions | --rows 200000]

`--worst-searches` is the other mode (see `search_main`): clients repeating the most expensive
search terms the term rule accepts, the deepest pages by number and walks by cursor, on a large
site, while other users list that site; it checks that nothing answers 5xx and that the plain lists
stay within 1.5x (--max-ratio) their median measured alone, first, in the same run.

Each client is a process of its own driving the real handlers in-process the way API Gateway does
(devtools/gateway.py: the token authorizer first, its context stringified), so every client stands
for one Lambda container with its own connection pool. It runs against a scratch database
`load_<pid>` on the embedded PostgreSQL (or on the server of DATABASE_URL) and a throwaway Redis
(or REDIS_URL), both set up and removed here; the per-user rate limit is lifted for the run.

Afterwards, from the database: no 5xx was answered, every acknowledged create is present exactly
once (and an acknowledged delete is gone), every acknowledged update is visible (each record holds
the newest acknowledged version), every record is in its creator's site, and no search answered a
record of another site. It prints requests, errors and latency percentiles; the exit status is 0
only when every check holds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/interactions"
TYPES = ["Meeting", "Call", "Email", "Update", "Review", "Training"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]
SHARED_PER_SITE = 5
PASSWORD = "load-test password"


# --- set-up -----------------------------------------------------------------------------------------


def _services(database: str) -> tuple[dict[str, str], str, object]:
    """(environment for the app, admin URL, redis handle) with a fresh scratch database."""
    from devtools import embedded

    url, admin, redis_url, redis_handle = embedded.scratch_services(database, "load-redis")
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "JWT_ISSUER": "interactions-load",
        "JWT_AUDIENCE": "interactions-api-load",
        "API_RATE_PER_MINUTE": "100000000",
        "LOGIN_RATE_PER_MINUTE": "100000",
        "SEARCH_RATE_PER_MINUTE": "100000000",
    }
    return env, admin, redis_handle


def scratch_environment(database: str) -> tuple[dict[str, str], str, object]:
    """(environment for the app, admin URL, redis handle) with a fresh scratch database."""
    return _services(database)


def seed_scratch(env: dict[str, str], users: int) -> tuple[list[int], dict[int, int], dict[int, list[int]]]:
    """The scratch database emptied (migrated the first time) and seeded as `_seed` does."""
    os.environ.update(env)
    from sqlalchemy import text

    from chalicelib.config import reset_settings
    from chalicelib.db import reset_engine, session_scope
    from chalicelib.models import Base

    reset_settings()
    reset_engine()
    with session_scope() as session:
        exists = session.execute(text("SELECT to_regclass('interactions')")).scalar()
        if exists:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    reset_engine()
    return _seed(env, users)


def drop_scratch(admin: str, database: str, redis_handle: Any) -> None:
    """The scratch database dropped (through `admin`) and its Redis, when embedded, stopped."""
    from sqlalchemy import create_engine, text

    from chalicelib.db import reset_engine

    reset_engine()
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    engine.dispose()
    if redis_handle is not None:
        from devtools import embedded

        embedded.stop_redis(redis_handle)


def _seed(env: dict[str, str], clients: int) -> tuple[list[int], dict[int, int], dict[int, list[int]]]:
    """Two sites, one editor per client (alternating sites) and a few shared records per site.
    Returns (site ids, client -> site, site -> shared record ids)."""
    os.environ.update(env)
    from datetime import datetime

    from chalicelib import cli
    from chalicelib.auth.passwords import hash_password
    from chalicelib.db import reset_engine, session_scope
    from chalicelib.kit.names import skeleton
    from chalicelib.models import Interaction, Site, SiteMembership, User

    if cli.main(["migrate"]) != 0:
        raise SystemExit("migration failed")
    password_hash = hash_password(PASSWORD)
    with session_scope() as session:
        sites = [Site(name=name, name_skeleton=skeleton(name)) for name in ("Load A", "Load B")]
        session.add_all(sites)
        session.flush()
        site_of = {}
        for n in range(clients):
            user = User(username=f"load{n}", email=f"load{n}@example.com", password_hash=password_hash)
            session.add(user)
            session.flush()
            site_of[n] = sites[n % 2].id
            session.add(SiteMembership(user_id=user.id, site_id=site_of[n], role="editor"))
        shared: dict[int, list[int]] = {}
        for site in sites:
            rows = [
                Interaction(
                    site_id=site.id,
                    title=f"shared {site.id}-{i}",
                    type="Meeting",
                    lead="Load",
                    start_datetime=datetime(2024, 1, 1, tzinfo=UTC),
                    timezone="UTC",
                )
                for i in range(SHARED_PER_SITE)
            ]
            session.add_all(rows)
            session.flush()
            shared[site.id] = [row.id for row in rows]
        site_ids = [site.id for site in sites]
    reset_engine()
    return site_ids, site_of, shared


# --- one client -------------------------------------------------------------------------------------


def _body(rng: random.Random, tag: str, key: str) -> dict[str, Any]:
    day = rng.randint(1, 28)
    return {
        "title": f"{tag} visit {rng.randint(1, 10**6)}",
        "type": rng.choice(TYPES),
        "lead": rng.choice(["Ann", "Bo", "Cy", "Di"]),
        "timezone": rng.choice(ZONES),
        "start_datetime": f"2025-03-{day:02d}T09:30:00",
        "end_datetime": f"2025-03-{day:02d}T10:30:00",
        "location": "Room " + str(rng.randint(1, 9)),
        "description": f"load {tag}",
        "notes": key,
    }


def client(
    n: int, env: dict[str, str], site_id: int, shared: list[int], duration: float, seed: int
) -> dict[str, Any]:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import logging

    logging.getLogger("interactions.access").disabled = True  # one line per request is too much here
    from devtools.gateway import Gateway

    worker = Worker(Gateway(), n, site_id, shared, random.Random(seed * 1000 + n))
    started = time.perf_counter()
    login = worker.call("login", "POST", "/api/auth/login", {"username": f"load{n}", "password": PASSWORD})
    if login.status == 200:
        worker.token = login.body["data"]["token"]
        while time.perf_counter() < started + duration:
            worker.step()
    return worker.result(time.perf_counter() - started)


def container_loop(
    n: int,
    token: str,
    site_id: int,
    shared: list[int],
    *,
    first_at: float,
    measure_from: float,
    until: float,
    think_s: float,
    rng: random.Random,
) -> dict[str, Any]:
    """One simulated Lambda container of the scale-out benchmark (bench/scaleout.py): its first
    request, a list, at `first_at` (perf_counter; the container's first invocation, which opens its
    connection), then the mixed operations one at a time until `until`, an exponential pause of
    mean `think_s` between them. Latencies count from `measure_from` on; every answer's status
    counts. The token is given (logged in once for every container of the user)."""
    import logging

    logging.getLogger("interactions.access").disabled = True
    from devtools.gateway import Gateway

    worker = Worker(Gateway(), n, site_id, shared, rng)
    worker.token = token
    time.sleep(max(0.0, first_at - time.perf_counter()))
    # The first invocation reads (the site's first page): 200 containers starting within seconds
    # must not all queue on the two sites' counter rows with creates.
    worker.call("list", "GET", PATH)
    warm_up: int | None = None  # how many answers came before the measured window
    while True:
        pause = rng.expovariate(1 / think_s) if think_s > 0 else 0.0
        if time.perf_counter() + pause >= until:
            # Idle, but alive to the end with its connection, as a warm container is.
            time.sleep(max(0.0, until - time.perf_counter()))
            break
        time.sleep(pause)
        if warm_up is None and time.perf_counter() >= measure_from:
            warm_up = len(worker.latencies)
        worker.step()
    if warm_up is None:
        warm_up = len(worker.latencies)
    result = worker.result(until - measure_from)
    return {**result, "n": n, "latencies": worker.latencies[warm_up:]}


class Worker:
    """A client's state: what it was told was created, updated and deleted, and its answers."""

    def __init__(self, gateway: Any, n: int, site_id: int, shared: list[int], rng: random.Random) -> None:
        self.gateway, self.n, self.site_id, self.shared, self.rng = gateway, n, site_id, shared, rng
        self.tag = f"client{n}x{uuid.uuid4().hex[:6]}"
        self.latencies: list[float] = []
        self.login_latencies: list[float] = []
        self.by_op: Counter = Counter()
        self.statuses: Counter = Counter()
        self.problems: list[str] = []
        self.creates: dict[str, dict[str, Any]] = {}  # key -> {"id", "site_id"}
        self.own: dict[int, int] = {}  # id -> version (live records this client made)
        self.updates: list[tuple[int, int, str]] = []  # (id, version, title) acknowledged
        self.deletes: list[int] = []
        self.token: str | None = None

    def call(
        self,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        started = time.perf_counter()
        result = self.gateway.request(method, path, self.token, body, headers=headers)
        # Login (argon2, deliberately slow) is reported apart from the API's other requests.
        (self.login_latencies if op == "login" else self.latencies).append(time.perf_counter() - started)
        self.by_op[op] += 1
        self.statuses[result.status] += 1
        if result.status not in expect:
            self.problems.append(f"{op}: {method} {path} -> {result.status} {result.raw[:200]}")
        return result

    def result(self, elapsed: float) -> dict[str, Any]:
        return {
            "problems": self.problems,
            "latencies": self.latencies,
            "by_op": self.by_op,
            "statuses": self.statuses,
            "creates": self.creates,
            "updates": self.updates,
            "deletes": self.deletes,
            "elapsed": elapsed,
            "login_latencies": self.login_latencies,
        }

    def step(self) -> None:
        """One operation, drawn at random."""
        rng, tag, own, shared, site_id, call = (
            self.rng,
            self.tag,
            self.own,
            self.shared,
            self.site_id,
            self.call,
        )
        creates, updates, deletes, problems = self.creates, self.updates, self.deletes, self.problems
        roll = rng.random()
        if roll < 0.30 or not own:
            key = uuid.uuid4().hex
            body = _body(rng, tag, key)
            created = call("create", "POST", PATH, body, {"Idempotency-Key": key}, expect=(201,))
            if created.status != 201:
                return
            row = created.body["data"]["interaction"]
            creates[key] = {"id": row["id"], "site_id": row["site_id"]}
            own[row["id"]] = row["version"]
            if row["site_id"] != site_id:
                problems.append(f"create landed in site {row['site_id']}, token's site is {site_id}")
            extra = rng.random()
            if extra < 0.15:  # the answer was "lost": the same request again
                again = call("retry", "POST", PATH, body, {"Idempotency-Key": key}, expect=(201,))
                if again.status == 201 and again.body["data"]["interaction"]["id"] != row["id"]:
                    problems.append(f"retry with key {key} created {again.body['data']['interaction']['id']}")
            elif extra < 0.20:  # the same key with another body
                call(
                    "reuse",
                    "POST",
                    PATH,
                    {**body, "title": "changed"},
                    {"Idempotency-Key": key},
                    expect=(422,),
                )
        elif roll < 0.45:  # update one of our own records, conditionally
            record = rng.choice(list(own))
            title = f"{tag} own update {rng.randint(1, 10**6)}"
            result = call(
                "update", "PUT", f"{PATH}/{record}", {"title": title}, {"If-Match": f'"{own[record]}"'}
            )
            if result.status == 200:
                own[record] = result.body["data"]["interaction"]["version"]
                updates.append((record, own[record], title))
        elif roll < 0.60:  # contend with the other clients of the site on a shared record
            record = rng.choice(shared)
            current = call("get", "GET", f"{PATH}/{record}")
            if current.status != 200:
                return
            title = f"{tag} shared update {rng.randint(1, 10**6)}"
            result = call(
                "update_shared",
                "PUT",
                f"{PATH}/{record}",
                {"title": title},
                {"If-Match": current.headers.get("ETag", "")},
                expect=(200, 412),
            )
            if result.status == 200:
                updates.append((record, result.body["data"]["interaction"]["version"], title))
        elif roll < 0.70:
            record = rng.choice(list(own))
            result = call("delete", "DELETE", f"{PATH}/{record}", headers={"If-Match": f'"{own[record]}"'})
            if result.status == 200:
                deletes.append(record)
                del own[record]
        elif roll < 0.90:
            query = rng.choice(
                [
                    f"search={tag}",
                    f"search={tag}&sort_by=title&sort_direction=asc",
                    f"lead=Ann&per_page=50&search={tag}",
                    f"type={rng.choice(TYPES)}&per_page=10",
                    "sort_by=updated_at&page=2",
                ]
            )
            result = call("search", "GET", f"{PATH}?{query}")
            if result.status == 200:
                for row in result.body["data"]["interactions"]:
                    if row["site_id"] != site_id:
                        problems.append(f"search answered record {row['id']} of site {row['site_id']}")
        else:
            record = rng.choice(list(own))
            result = call("get", "GET", f"{PATH}/{record}")
            if result.status == 200 and result.body["data"]["interaction"]["version"] != own[record]:
                problems.append(
                    f"record {record}: read version {result.body['data']['interaction']['version']},"
                    f" expected {own[record]}"
                )


def _client_entry(args: tuple) -> dict[str, Any]:
    return client(*args)


# --- verification -----------------------------------------------------------------------------------


def verify(
    results: list[dict[str, Any]], site_of: dict[int, int], shared: dict[int, list[int]]
) -> tuple[list[str], int]:
    """Problems found in the database, and the number of rows checked."""
    from sqlalchemy import func, select

    from chalicelib.db import session_scope
    from chalicelib.models import IdempotencyKey, Interaction

    problems: list[str] = []
    with session_scope() as session:
        rows = {row.id: row for row in session.scalars(select(Interaction))}
        keys = session.scalar(select(func.count()).select_from(IdempotencyKey))
    by_note = Counter(row.notes for row in rows.values() if row.notes)
    deleted = {record for result in results for record in result["deletes"]}
    acknowledged = 0
    for n, result in enumerate(results):
        for key, created in result["creates"].items():
            acknowledged += 1
            expected = 0 if created["id"] in deleted else 1
            if by_note[key] != expected:
                problems.append(f"create {key}: {by_note[key]} rows, expected {expected}")
            row = rows.get(created["id"])
            if expected and row is not None and row.site_id != site_of[n]:
                problems.append(f"record {row.id} is in site {row.site_id}, its creator's is {site_of[n]}")
    seeded = sum(len(ids) for ids in shared.values())
    if len(rows) != seeded + acknowledged - len(deleted):
        problems.append(
            f"{len(rows)} rows, expected {seeded} seeded + {acknowledged} created - {len(deleted)} deleted"
        )
    if keys != acknowledged:
        problems.append(f"{keys} idempotency keys stored, {acknowledged} keyed creates acknowledged")
    newest: dict[int, tuple[int, str]] = {}
    for result in results:
        for record, version, title in result["updates"]:
            if record not in newest or version > newest[record][0]:
                newest[record] = (version, title)
    for record, (version, title) in newest.items():
        row = rows.get(record)
        if row is None:
            if record not in deleted:
                problems.append(f"updated record {record} is missing")
            continue
        if (row.version, row.title) != (version, title):
            problems.append(
                f"record {record}: stored v{row.version} {row.title!r}, "
                f"newest acknowledged v{version} {title!r}"
            )
    return problems, len(rows)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else 0.0


# --- the worst accepted searches ---------------------------------------------------------------------

# Accepted terms (three ASCII letters or digits in a row) that cost the most on seed-demo's data:
# every trigram of each occurs in nearly every row ("<subject> with <lead> of <company>: ..."), so
# the trigram index hands back the whole site and every row is re-checked, while the term itself
# matches few rows or none; then the shortest common term (every row matches, so the count reads
# them all) and punctuation-heavy ones, up to the 255-character limit. Each request gives its
# letters a random case, which defeats the remembered totals (keyed by the term as sent) and costs
# the same to the index.
WORST_TERMS = [
    ("search", "with of"),
    ("search", "of with"),
    ("search", "ith wit"),
    ("search", "the of"),
    ("search", "wit"),
    ("search", "%%%wit%%%"),
    ("search", "%" * 126 + "with" + "%" * 125),
    ("search", "Müller of"),
    ("search", "with . of"),
    ("title", "ate - "),
    ("lead", "ana"),
    ("location", "oom r"),
]
PLAIN_LISTS = ["", "?sort_by=title&sort_direction=asc", "?page=7", "?sort_by=updated_at", "?per_page=100"]
# Deep pages by number (the deepest the depth limit allows: page 400 x 25) and walks by cursor, in
# sorted orders: not searches, so SEARCH_RATE_PER_MINUTE does not bound them; the per-user limit
# (API_RATE_PER_MINUTE, 600 a minute deployed) does, which --attack-rate models.
DEEP_PAGES = [
    "?page=400",
    "?page=400&sort_by=title&sort_direction=asc",
    "?page=400&sort_by=location&sort_direction=desc",
    "?page=100&per_page=100&sort_by=updated_at",
]
CURSOR_ORDERS = ["", "?sort_by=title&sort_direction=asc", "?sort_by=location&sort_direction=desc"]
SEARCH_PASSWORD = "load-search password"


def _existing_services(database: str) -> tuple[dict[str, str], Any]:
    """(environment for the app, redis handle) for an existing database on the server of
    DATABASE_URL, or on the embedded one."""
    from devtools import embedded

    if os.environ.get("DATABASE_URL"):
        from sqlalchemy.engine import make_url

        from chalicelib.config import normalise_database_url

        url = make_url(normalise_database_url(os.environ["DATABASE_URL"])).set(database=database)
        url = url.render_as_string(hide_password=False)
    else:
        url = embedded.postgres_url(embedded.postgres_server(), database)
    redis_handle, redis_url = None, os.environ.get("REDIS_URL")
    if not redis_url:
        redis_handle = embedded.redis_server(f"load-redis-{os.getpid()}", throwaway=True)
        redis_url = embedded.redis_url(redis_handle)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "JWT_ISSUER": "interactions-load",
        "JWT_AUDIENCE": "interactions-api-load",
        "API_RATE_PER_MINUTE": "100000000",
        "LOGIN_RATE_PER_MINUTE": "100000",
    }
    return env, redis_handle


def _search_users(env: dict[str, str], count: int, prefix: str) -> tuple[int, int]:
    """`count` viewers of the biggest site, named `<prefix><n>`. Returns (site id, its rows)."""
    os.environ.update(env)
    from sqlalchemy import select

    from chalicelib.auth.passwords import hash_password
    from chalicelib.db import reset_engine, session_scope
    from chalicelib.models import SiteInteractionCount, SiteMembership, User

    with session_scope() as session:
        biggest = session.execute(
            select(SiteInteractionCount.site_id, SiteInteractionCount.interactions)
            .order_by(SiteInteractionCount.interactions.desc())
            .limit(1)
        ).first()
        if biggest is None or not biggest.interactions:
            raise SystemExit("the database has no interactions: seed it first (seed-demo)")
        password_hash = hash_password(SEARCH_PASSWORD)
        for n in range(count):
            user = User(
                username=f"{prefix}{n}", email=f"{prefix}{n}@example.com", password_hash=password_hash
            )
            session.add(user)
            session.flush()
            session.add(SiteMembership(user_id=user.id, site_id=biggest.site_id, role="viewer"))
    reset_engine()
    return biggest.site_id, biggest.interactions


def _remove_search_users(env: dict[str, str], prefix: str) -> None:
    # Deleting an account sets `updated_by` to null in the interactions it changed, which no index
    # serves: on a million rows that outlasts the role's statement timeout (lifted for this
    # transaction) and the socket's read timeout that follows DB_STATEMENT_TIMEOUT_MS.
    os.environ.update(env, DB_STATEMENT_TIMEOUT_MS="600000")
    from sqlalchemy import delete, text

    from chalicelib.config import reset_settings
    from chalicelib.db import reset_engine, session_scope
    from chalicelib.models import User

    reset_settings()
    reset_engine()

    with session_scope() as session:  # memberships go with them (ON DELETE CASCADE)
        session.execute(text("SET LOCAL statement_timeout = 0"))
        session.execute(delete(User).where(User.username.startswith(prefix)))
    reset_engine()


def _random_case(rng: random.Random, term: str) -> str:
    return "".join(c.upper() if c.isascii() and rng.random() < 0.5 else c for c in term)


def search_client(
    role: str,
    n: int,
    env: dict[str, str],
    username: str,
    site_id: int,
    baseline: float,
    duration: float,
    seed: int,
    after_login: Any,
    after_baseline: Any,
    results: Any,
    attack_rate: float = 10.0,
) -> None:
    """One user: an `attacker` repeats the worst terms, deep pages and cursor walks once the
    listers' baseline is over (at most `attack_rate` requests a second, the per-user limit); a
    `lister` lists alone for `baseline` seconds, then as long again as the attackers run."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import logging
    from urllib.parse import quote

    logging.getLogger("interactions.access").disabled = True
    from devtools.gateway import Gateway

    gateway = Gateway()
    rng = random.Random(seed * 1000 + n)
    report: dict[str, Any] = {
        "role": role,
        "alone": [],
        "loaded": [],
        "statuses": Counter(),
        "problems": [],
        "by_term": {},
    }
    login = gateway.request(
        "POST", "/api/auth/login", None, {"username": username, "password": SEARCH_PASSWORD}
    )
    token = login.body["data"]["token"] if login.status == 200 else None
    if token is None:
        report["problems"].append(f"login of {username}: {login.status} {login.raw[:200]}")
    after_login.wait()

    cursors: dict[str, str | None] = {}
    blocked = [0.0]  # searches refused (429) until then

    def run(until: float, pick: Any, into: list[float]) -> None:
        while time.perf_counter() < until:
            label, target = pick()
            started = time.perf_counter()
            result = gateway.request("GET", target, token)
            elapsed = time.perf_counter() - started
            if role == "attacker":
                if label.startswith("cursor") and result.status == 200:  # walk on (from the start at the end)
                    cursors[label] = result.body["meta"]["pagination"]["next_cursor"]
                time.sleep(max(0.0, 1.0 / attack_rate - elapsed))
            into.append(elapsed)
            report["statuses"][result.status] += 1
            report["by_term"].setdefault(label, []).append(elapsed)
            if result.status == 429 and role == "attacker" and "Retry-After" in result.headers:
                # The search limit (SEARCH_RATE_PER_MINUTE) doing its job. The client searches again
                # when told (one that does not only spins against a 429 answered from Redis, which
                # API Gateway's stage throttle bounds) and pages deep meanwhile.
                blocked[0] = time.perf_counter() + float(result.headers["Retry-After"])
                continue
            if result.status != 200:
                report["problems"].append(f"{role} {target[:80]} -> {result.status} {result.raw[:200]}")
            elif any(row["site_id"] != site_id for row in result.body["data"]["interactions"]):
                report["problems"].append(f"{role} {target[:80]} answered another site's record")

    def plain() -> tuple[str, str]:
        query = rng.choice(PLAIN_LISTS)
        return query or "default", PATH + query

    def worst() -> tuple[str, str]:
        kind = rng.random()
        if kind < 0.4 and time.perf_counter() >= blocked[0]:
            name, term = rng.choice(WORST_TERMS)
            return f"{name}={term[:20]}", f"{PATH}?{name}={quote(_random_case(rng, term), safe='')}"
        if kind < 0.7:
            query = rng.choice(DEEP_PAGES)
            return f"deep {query[1:30]}", PATH + query
        order = rng.choice(CURSOR_ORDERS)
        label = f"cursor {order[1:30] or 'default'}"
        cursor = cursors.get(label)
        joiner = "&" if order else "?"
        return label, PATH + order + (f"{joiner}cursor={cursor}" if cursor else "")

    if token is not None and role == "lister":
        run(time.perf_counter() + baseline, plain, report["alone"])
    after_baseline.wait()
    if token is not None:
        run(time.perf_counter() + duration, plain if role == "lister" else worst, report["loaded"])
    results.put(report)


def search_main(args: argparse.Namespace) -> int:
    """The --worst-searches mode. Exit status 0 only when no request failed (no 5xx, every term
    accepted, no other site's record) and the listers' loaded median is within --max-ratio of
    their median alone."""
    prefix = f"load-search-{os.getpid()}-"
    scratch = None if args.database else f"load_{os.getpid()}"
    if scratch:
        env, admin, redis_handle = _services(scratch)
    else:
        env, redis_handle = _existing_services(args.database)
    # The search limit stays as deployed: it is what keeps these clients from saturating the database.
    env.pop("SEARCH_RATE_PER_MINUTE", None)
    total = args.clients + args.listers
    try:
        if scratch:
            os.environ.update(env)
            from chalicelib import cli

            if (
                cli.main(["migrate"]) != 0
                or cli.main(
                    ["seed-demo", "--sites", "5", "--interactions", str(args.rows), "--password", PASSWORD]
                )
                != 0
            ):
                raise SystemExit("could not seed the scratch database")
            from chalicelib.db import reset_engine

            reset_engine()
        site_id, site_rows = _search_users(env, total, prefix)
        print(
            f"worst searches: {args.clients} clients repeating {len(WORST_TERMS)} terms, deep pages and cursor "
            f"walks (at most {args.attack_rate:g}/s each) and {args.listers} "
            f"listing, on a site of {site_rows:,} rows ({args.database or scratch}); "
            f"{args.baseline:.0f} s of lists alone, then {args.duration:.0f} s together ...",
            flush=True,
        )
        context = multiprocessing.get_context("spawn")
        after_login, after_baseline, results = context.Barrier(total), context.Barrier(total), context.Queue()
        roles = ["lister"] * args.listers + ["attacker"] * args.clients
        processes = [
            context.Process(
                target=search_client,
                args=(
                    role,
                    n,
                    env,
                    f"{prefix}{n}",
                    site_id,
                    args.baseline,
                    args.duration,
                    args.seed,
                    after_login,
                    after_baseline,
                    results,
                    args.attack_rate,
                ),
            )
            for n, role in enumerate(roles)
        ]
        for process in processes:
            process.start()
        reports = [results.get(timeout=args.baseline + args.duration + 600) for _ in processes]
        for process in processes:
            process.join()
        return _search_verdict(args, reports)
    finally:
        from chalicelib.db import reset_engine

        reset_engine()
        if scratch:
            from sqlalchemy import create_engine, text

            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            engine.dispose()
        else:
            _remove_search_users(env, prefix)
        if redis_handle is not None:
            from devtools import embedded

            embedded.stop_redis(redis_handle)


def _ms(values: list[float], fraction: float | None = None) -> float:
    if not values:
        return 0.0
    return (statistics.median(values) if fraction is None else _percentile(values, fraction)) * 1000


def _search_verdict(args: argparse.Namespace, reports: list[dict[str, Any]]) -> int:
    listers = [r for r in reports if r["role"] == "lister"]
    attackers = [r for r in reports if r["role"] == "attacker"]
    alone = [x for r in listers for x in r["alone"]]
    loaded = [x for r in listers for x in r["loaded"]]
    attacks = [x for r in attackers for x in r["loaded"]]
    statuses = sum((r["statuses"] for r in reports), Counter())
    problems = [p for r in reports for p in r["problems"]]
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    ratio = _ms(loaded) / _ms(alone) if alone and loaded else float("inf")
    print(
        f"plain lists alone:  {len(alone)} requests, median {_ms(alone):.1f} ms, p95 {_ms(alone, 0.95):.1f} ms"
    )
    print(
        f"plain lists loaded: {len(loaded)} requests, median {_ms(loaded):.1f} ms, p95 {_ms(loaded, 0.95):.1f} ms,"
        f" max {_ms(loaded, 1.0):.1f} ms; median ratio {ratio:.2f} (allowed {args.max_ratio:.1f})"
    )
    limited = sum(r["statuses"].get(429, 0) for r in attackers)
    print(f"search limit:       {limited} of the worst searches refused (429, SEARCH_RATE_PER_MINUTE)")
    print(
        f"attackers:          {len(attacks)} requests ({len(attacks) / args.duration:.1f}/s), median "
        f"{_ms(attacks):.0f} ms, p95 {_ms(attacks, 0.95):.0f} ms, max {_ms(attacks, 1.0):.0f} ms"
    )
    by_term: dict[str, list[float]] = {}
    for r in attackers:
        for label, values in r["by_term"].items():
            by_term.setdefault(label, []).extend(values)
    for label, values in sorted(by_term.items()):
        print(
            f"  {label:<28} {len(values):>5} requests, median {_ms(values):6.0f} ms, max {_ms(values, 1.0):6.0f} ms"
        )
    print("statuses: " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
    print(f"errors: {server_errors} 5xx, {len(problems)} unexpected answers")
    for problem in problems[:20]:
        print("  -", problem)
    ok = not server_errors and not problems and ratio <= args.max_ratio
    print("verdict: " + ("pass" if ok else "FAIL"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per client")
    parser.add_argument("--seed", type=int, default=1)
    worst = parser.add_argument_group("--worst-searches mode")
    worst.add_argument(
        "--worst-searches",
        action="store_true",
        help="clients repeat the worst accepted search terms while --listers list",
    )
    worst.add_argument("--listers", type=int, default=2, help="users doing plain lists")
    worst.add_argument("--baseline", type=float, default=20, help="seconds the listers run alone first")
    worst.add_argument(
        "--database",
        help="an existing seeded database on the server (seed-demo); "
        "left as it was, but for the run's own users",
    )
    worst.add_argument(
        "--rows",
        type=int,
        default=200_000,
        help="without --database: interactions seeded into the scratch database",
    )
    worst.add_argument(
        "--max-ratio",
        type=float,
        default=1.5,
        help="loaded over unloaded median of the plain lists that still passes",
    )
    worst.add_argument(
        "--attack-rate",
        type=float,
        default=10.0,
        help="requests a second per attacker at most (API_RATE_PER_MINUTE's 600 a minute deployed; "
        "the run lifts the limit so that the listers are never refused)",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.worst_searches:
        return search_main(args)

    database = f"load_{os.getpid()}"
    env, admin, redis_handle = _services(database)
    try:
        site_ids, site_of, shared = _seed(env, args.clients)
        print(f"load: {args.clients} clients for {args.duration:.0f} s against {database} ...", flush=True)
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.clients) as pool:
            results = pool.map(
                _client_entry,
                [
                    (n, env, site_of[n], shared[site_of[n]], args.duration, args.seed)
                    for n in range(args.clients)
                ],
            )
        problems = [p for result in results for p in result["problems"]]
        db_problems, rows = verify(results, site_of, shared)
        latencies = [x for result in results for x in result["latencies"]]
        statuses = sum((result["statuses"] for result in results), Counter())
        by_op = sum((result["by_op"] for result in results), Counter())
        server_errors = sum(count for status, count in statuses.items() if status >= 500)
        elapsed = max(result.get("elapsed", args.duration) for result in results)
        acknowledged_updates = sum(len(result["updates"]) for result in results)
        logins = [x for result in results for x in result.get("login_latencies", [])]
        requests = sum(by_op.values())
        print(
            f"clients {args.clients}, duration {elapsed:.0f} s, requests {requests} "
            f"({requests / elapsed:.0f}/s)"
        )
        print("operations: " + ", ".join(f"{op} {count}" for op, count in sorted(by_op.items())))
        print("statuses: " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
        print(
            f"latency ms: median {statistics.median(latencies) * 1000:.1f}, "
            f"p95 {_percentile(latencies, 0.95) * 1000:.1f}, p99 {_percentile(latencies, 0.99) * 1000:.1f}, "
            f"max {max(latencies) * 1000:.1f} (all but login); "
            f"login median {statistics.median(logins) * 1000:.0f}"
        )
        print(
            f"errors: {server_errors} 5xx, {len(problems)} unexpected answers, "
            f"{len(db_problems)} verification failures"
        )
        print(
            f"verified: {rows} rows; {sum(len(r['creates']) for r in results)} acknowledged creates, "
            f"{acknowledged_updates} acknowledged updates, {sum(len(r['deletes']) for r in results)} deletes"
        )
        for problem in (problems + db_problems)[:20]:
            print("  -", problem)
        return 0 if not (server_errors or problems or db_problems) else 1
    finally:
        drop_scratch(admin, database, redis_handle)


if __name__ == "__main__":
    sys.exit(main())
