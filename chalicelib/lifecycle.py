"""The API Lambda's life: one-time work at init, and what a SnapStart snapshot must not keep.

Init (importing app.py) loads every library, model and route, checks the settings and creates
the engine and the Redis client — objects only, no connection. An ordinary cold start stops there:
its init is the first user's wait, so it builds only what any first request needs; the rest is
built once, by the first request that uses it (a schema's validator: chalicelib/kit/schema.py;
argon2: the first login; the OpenAPI document: its first reader). A SnapStart init
(`AWS_LAMBDA_INITIALIZATION_TYPE` is `snap-start`, when a version is published) goes further,
since nobody waits for it: it builds every schema's validator and the OpenAPI document, runs the
validators once, and, when the database and Redis are reachable, serves a few requests in-process
as a user that does not exist, so SQLAlchemy's statement cache and the code paths of a request are
warm in the snapshot.

Runtime hooks (`snapshot_restore_py`, provided by Lambda's managed runtime; registered here when it
is importable, and callable directly): before the snapshot every connection is closed (database
pool and Redis pool emptied — a socket in a snapshot is dead after the restore, and would be shared
by every restored copy); after a restore the pools start afresh, Python's `random` is reseeded (our
ids and tokens come from the OS: `secrets`, `uuid4`), the verified-token cache is dropped and the
signing keys will be loaded again on a kid they do not know. Cached secrets are kept: a rotated
database password is fetched again when PostgreSQL refuses the cached one, a rotated signing key
when a token names it (chalicelib/db.py, chalicelib/auth/tokens.py).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import Any

log = logging.getLogger(__name__)

SNAP_START = "snap-start"
_initialised = False
_registered: dict[str, bool] = {"before_snapshot": False, "after_restore": False}


def initialization_type() -> str:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")


def init(app: Any) -> None:
    """Called once by app.py after the routes are registered."""
    global _initialised
    if _initialised:
        return
    _initialised = True
    from chalicelib import cache, db
    from chalicelib.config import require_valid_settings

    require_valid_settings()
    db.get_engine()  # the engine and its pool: no connection yet
    cache.get_redis()  # the client and its pool: no connection yet
    register_hooks()
    if initialization_type() == SNAP_START:
        prime(app)


def register_hooks() -> None:
    """Register the hooks with Lambda's runtime, when it provides them."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not in Lambda's managed runtime (tests call the hooks directly)
        return
    if not _registered["before_snapshot"]:
        register_before_snapshot(before_snapshot)
        _registered["before_snapshot"] = True
    if not _registered["after_restore"]:
        register_after_restore(after_restore)
        _registered["after_restore"] = True


def _close_connections() -> None:
    from chalicelib import cache, db

    db.close_connections()
    cache.close_connections()


def before_snapshot() -> None:
    """No connection may be open when the snapshot is taken."""
    _close_connections()


def after_restore() -> None:
    """A restored copy starts like a new container, with the init's work already done."""
    from chalicelib.auth import tokens

    _close_connections()  # whatever a hook or the runtime opened since: start afresh
    random.seed()  # every restored copy would otherwise continue the same sequence
    tokens.forget_verified()


# --- priming (SnapStart init only) -----------------------------------------------------------------

_SAMPLE_INTERACTION = {
    "title": "Priming",
    "type": "Meeting",
    "lead": "Nobody",
    "start_datetime": "2024-05-01T14:00:00",
    "timezone": "Europe/Paris",
    "end_datetime": "2024-05-01T15:00:00Z",
    "location": "Nowhere",
}
_PRIMING_PATHS = [
    "/api/auth/me",
    "/api/auth/sites",
    "/api/interactions",
    "/api/interactions/1",
    "/api/interactions?search=priming&sort_by=title",
    "/api/sites/1",
    "/api/sites/1/users",
    "/api/interactions/types",
]


def prime(app: Any) -> dict[str, Any]:
    """The work a snapshot should hold. Returns what was done (for logs and tests)."""
    started = time.perf_counter()
    done: dict[str, Any] = {}
    from chalicelib import openapi
    from chalicelib.auth import passwords
    from chalicelib.interactions import schemas
    from chalicelib.kit import emails, schema

    done["schemas"] = schema.build_all()
    openapi.document()
    passwords.verify_password(None, "priming")  # loads argon2 and makes the unknown-user hash
    schemas.parse_create(dict(_SAMPLE_INTERACTION))
    schemas.parse_update({"title": "Priming", "end_datetime": None})
    emails.check_new("priming@example.com")  # loads email-validator
    done["validators"] = True
    try:
        done["requests"] = _serve_priming_requests(app)
    except Exception:  # the snapshot is still good without it: the first request warms them
        log.warning("priming requests failed; the snapshot holds the libraries only", exc_info=True)
        done["requests"] = 0
    finally:
        _close_connections()
    done["seconds"] = round(time.perf_counter() - started, 3)
    log.info(json.dumps({"event": "primed", **done}))
    return done


def _serve_priming_requests(app: Any) -> int:
    """Requests through the real handler, as a user id no account has (0): every one ends in a 401
    after its statements ran (no rows), having compiled and prepared them."""
    from chalicelib.auth import tokens
    from chalicelib.config import get_settings

    now = int(time.time())
    authorizer = {
        "auth": "ok",
        "user_id": "0",
        "session_id": "0" * 32,
        "site_id": "1",
        "kid": tokens.key_id(get_settings().signing_key()),
        "expires_at": str(now + 60),
        "issued_at": str(now),
        "auth_time_ms": str(now * 1000),
        "principalId": "0",
    }
    served = 0
    for target in _PRIMING_PATHS:
        path, _, query = target.partition("?")
        resource = (
            "/api/interactions/{interaction_id}"
            if path == "/api/interactions/1"
            else "/api/sites/{site_id}"
            if path == "/api/sites/1"
            else "/api/sites/{site_id}/users"
            if path == "/api/sites/1/users"
            else path
        )
        params = (
            {"interaction_id": "1"}
            if "{interaction_id}" in resource
            else {"site_id": "1"}
            if "{site_id}" in resource
            else None
        )
        multi: dict[str, list[str]] = {}
        for pair in filter(None, query.split("&")):
            name, _, value = pair.partition("=")
            multi.setdefault(name, []).append(value)
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": "GET",
            # A well-formed header (the API holds it to the authorizer's one spelling); the context
            # above is what the requests are checked by.
            "headers": {"Authorization": "Bearer cHJpbWluZw.cHJpbWluZw.cHJpbWluZw"},
            "multiValueQueryStringParameters": multi or None,
            "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
            "pathParameters": params,
            "stageVariables": None,
            "body": None,
            "isBase64Encoded": False,
            "requestContext": {
                "httpMethod": "GET",
                "resourcePath": resource,
                "path": path,
                "stage": "api",
                "requestId": "priming",
                "identity": {"sourceIp": "127.0.0.1"},
                "authorizer": authorizer,
            },
        }
        status = app(event, None)["statusCode"]
        if status >= 500:
            raise RuntimeError(f"priming {target}: {status}")
        served += 1
    return served
