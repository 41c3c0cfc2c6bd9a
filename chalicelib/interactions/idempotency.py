"""`Idempotency-Key` for POST /api/interactions: a retried create is answered, not repeated.

A key is scoped to the caller's site and user and kept 24 hours. The same key with the same body
(compared as parsed JSON) replays the first successful answer (status, body, `ETag`, `Location`);
with a different body it is 422 IDEMPOTENCY_KEY_REUSED; while the first request is still running
it is 409 CONFLICT. Only successes are remembered: the key row is written in the create's own
transaction, so a failed create leaves no key behind and the retry simply runs again.

"Still running" is a transaction-scoped advisory lock on the key, taken before anything else is
looked at: a second request that cannot take it at once is the duplicate of one in flight. The lock
ends with the first request's transaction, by which time its key row is committed and visible, so
the next retry finds the stored answer. Expired keys are ignored, replaced when the same key comes
again, and deleted a batch at a time by later keyed creates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from chalicelib.access import Principal, Read, TokenContext, fold
from chalicelib.errors import Conflict, IdempotencyKeyReused, ValidationFailed
from chalicelib.interactions.queries import InteractionRow, interaction
from chalicelib.kit.answers import Answer
from chalicelib.models import IdempotencyKey, Interaction

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
TTL_HOURS = 24
CLEANUP_BATCH = 100
REPLAYED_HEADERS = ("ETag", "Location")


def key_from(headers: Any) -> str | None:
    """The request's Idempotency-Key, None when absent; 400 when empty, too long or holding
    control characters (a header cannot carry them faithfully)."""
    raw = headers.get(HEADER.lower())
    if raw is None:
        return None
    key = str(raw).strip()
    problem = None
    if not key:
        problem = "must not be empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"must be at most {MAX_KEY_LENGTH} characters"
    elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        problem = "must not contain control characters"
    if problem:
        raise ValidationFailed(f"Invalid {HEADER} header", details=[{"field": HEADER, "message": problem}])
    return key


def request_hash(body: Any) -> str:
    """The body as parsed JSON, canonically encoded: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_id(site_id: int, user_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{site_id}:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _cutoff() -> Any:
    return func.now() - text(f"interval '{TTL_HOURS} hours'")


# The request's first statement when a key is sent: the caller's rights and the key's lock, taken
# before any later statement looks for a stored answer (READ COMMITTED: each statement sees what
# committed before it began, so the look must come after the lock, in a later statement).
LOCKED_RIGHTS = fold(
    extra=(func.pg_try_advisory_xact_lock(bindparam("lock_id", type_=BigInteger)).label("key_locked"),)
)


def key_read(token: TokenContext, raw_key: str | None) -> Read[bool]:
    """A create's first statement: with an Idempotency-Key, the caller's rights and the key's lock
    (taken without waiting: False when another request holds it); without one, the rights alone."""
    if raw_key is None:
        return Read(shape=lambda _rows: False)
    return Read(
        LOCKED_RIGHTS,
        {"lock_id": _lock_id(token.site_id or 0, token.user_id, raw_key.strip())},
        key="key_locked",
        shape=lambda rows: bool(rows.head is not None and rows.head.key_locked),
    )


def run(
    session: Session,
    *,
    principal: Principal,
    key: str | None,
    locked: bool,
    body: Any,
    values: dict[str, Any],
    answer: Callable[[InteractionRow], Answer],
    event: Callable[[Any], Any],
) -> Answer:
    """Create the interaction `values` and answer it with `answer(row)`, remembering the answer
    under `key` (no key: just create). `locked`: whether the request's first statement took the
    key's lock (`LOCKED_RIGHTS`).

    Call it after every other check (401 ... 400) has passed: 409 and 422 come last. With a key it
    costs two statements: the stored answer looked for and the create made only without one (one
    statement), then the key stored with the answer. `event(created)` is the audit event of the
    row the CTE `created` inserts, recorded in the create's statement."""
    table = cast(Table, Interaction.__table__)
    if key is None:
        created = insert(table).values(**values).returning(*table.c).cte("created")
        return answer(interaction(session.execute(select(*created.c).add_cte(event(created))).one()))
    if not locked:
        raise Conflict(
            f"A request with this {HEADER} is still in progress; retry shortly", headers={"Retry-After": "1"}
        )
    assert principal.site_id is not None
    site_id, user_id = principal.site_id, principal.user_id
    scope = (IdempotencyKey.site_id == site_id, IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    stored = (
        select(IdempotencyKey.request_hash, IdempotencyKey.status, IdempotencyKey.response)
        .where(*scope, IdempotencyKey.created_at > _cutoff())
        .cte("stored")
    )
    source = select(
        *[literal(value, table.c[name].type).label(name) for name, value in values.items()]
    ).where(~exists(select(stored.c.status)))
    created = insert(table).from_select(list(values), source).returning(*table.c).cte("created")
    one = select(literal(1).label("one")).subquery("one")
    row = session.execute(
        select(stored.c.request_hash, stored.c.status.label("stored_status"), stored.c.response, *created.c)
        .select_from(one.outerjoin(stored, true()).outerjoin(created, true()))
        .add_cte(event(created))
    ).one()
    digest = request_hash(body)
    if row.request_hash is not None:
        if row.request_hash != digest:
            raise IdempotencyKeyReused()
        return _replay(row.stored_status, row.response)

    done = answer(interaction(row))
    session.execute(_remember(site_id, user_id, key, digest, done))
    return done


def _remember(site_id: int, user_id: int, key: str, digest: str, done: Answer) -> Any:
    """One statement: store the key with its answer (replacing this key's expired row, if any) and
    delete a batch of other expired keys, skipping rows another transaction is deleting."""
    mine = and_(
        IdempotencyKey.site_id == site_id, IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
    )
    batch = (
        select(IdempotencyKey.site_id, IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at <= _cutoff(), ~mine)
        .limit(CLEANUP_BATCH)
        .with_for_update(skip_locked=True)
    )
    cleanup = (
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.site_id, IdempotencyKey.user_id, IdempotencyKey.key).in_(batch))
        .cte("cleanup")
    )
    response = {
        "body": _as_sent(done.body),
        "headers": {name: done.headers[name] for name in REPLAYED_HEADERS if name in done.headers},
    }
    stmt = pg_insert(IdempotencyKey).values(
        site_id=site_id, user_id=user_id, key=key, request_hash=digest, status=done.status, response=response
    )
    return stmt.on_conflict_do_update(
        index_elements=[IdempotencyKey.site_id, IdempotencyKey.user_id, IdempotencyKey.key],
        set_={
            "request_hash": stmt.excluded.request_hash,
            "status": stmt.excluded.status,
            "response": stmt.excluded.response,
            "created_at": func.now(),
        },
        where=IdempotencyKey.created_at <= _cutoff(),
    ).add_cte(cleanup)


def _as_sent(body: Any) -> str:
    """The body exactly as Chalice puts it on the wire, kept as a string: a JSONB object would
    come back with its keys reordered, and a replay is meant to be the same answer byte for byte."""
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


def _replay(status: int, stored: dict[str, Any]) -> Answer:
    headers = dict(stored.get("headers") or {})
    headers["Idempotent-Replayed"] = "true"
    return Answer(status, stored["body"], headers)
