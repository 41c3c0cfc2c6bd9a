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
from typing import Any

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from chalicelib.caller import Principal
from chalicelib.errors import Conflict, IdempotencyKeyReused, ValidationFailed
from chalicelib.http import Answer
from chalicelib.models import IdempotencyKey

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
    key = raw.strip()
    problem = None
    if not key:
        problem = "must not be empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"must be at most {MAX_KEY_LENGTH} characters"
    elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        problem = "must not contain control characters"
    if problem:
        raise ValidationFailed(f"Invalid {HEADER} header",
                               details=[{"field": HEADER, "message": problem}])
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


def run(session: Session, *, principal: Principal, key: str | None, body: Any,
        respond: Callable[[], Answer]) -> Answer:
    """Answer a create, remembering the answer under `key` (no key: just create).

    Call it after every other check (401 ... 400) has passed: 409 and 422 come last."""
    if key is None:
        return respond()
    assert principal.site_id is not None
    site_id, user_id = principal.site_id, principal.user_id
    if not session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(site_id, user_id, key)))):
        raise Conflict(f"A request with this {HEADER} is still in progress; retry shortly",
                       headers={"Retry-After": "1"})
    scope = (IdempotencyKey.site_id == site_id, IdempotencyKey.user_id == user_id,
             IdempotencyKey.key == key)
    stored = session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.status, IdempotencyKey.response)
        .where(*scope, IdempotencyKey.created_at > _cutoff())
    ).first()
    digest = request_hash(body)
    if stored is not None:
        if stored.request_hash != digest:
            raise IdempotencyKeyReused()
        return _replay(stored.status, stored.response)

    answer = respond()
    if answer.status >= 400:  # only successes are remembered
        return answer
    _forget_expired(session, scope)
    session.execute(insert(IdempotencyKey).values(
        site_id=site_id, user_id=user_id, key=key, request_hash=digest,
        status=answer.status,
        response={"body": _as_sent(answer.body),
                  "headers": {name: answer.headers[name] for name in REPLAYED_HEADERS
                              if name in answer.headers}},
    ))
    return answer


def _as_sent(body: Any) -> str:
    """The body exactly as Chalice puts it on the wire, kept as a string: a JSONB object would
    come back with its keys reordered, and a replay is meant to be the same answer byte for byte."""
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


def _replay(status: int, stored: dict[str, Any]) -> Answer:
    headers = dict(stored.get("headers") or {})
    headers["Idempotent-Replayed"] = "true"
    return Answer(status, stored["body"], headers)


def _forget_expired(session: Session, scope: tuple[Any, ...]) -> None:
    """Drop this key's expired row (so it can be used again) and a batch of other expired rows.
    Rows another transaction is deleting are skipped, never waited for."""
    session.execute(delete(IdempotencyKey).where(*scope, IdempotencyKey.created_at <= _cutoff()))
    batch = (
        select(IdempotencyKey.site_id, IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at <= _cutoff())
        .limit(CLEANUP_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.site_id, IdempotencyKey.user_id, IdempotencyKey.key).in_(batch))
        .execution_options(synchronize_session=False)
    )
