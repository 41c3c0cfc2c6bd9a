"""The API Gateway authorizer: its own Lambda, so it imports only chalice and PyJWT.

Its answer depends on the token alone — signature and claims, no network I/O once the signing keys
are loaded — so API Gateway may cache it per `Authorization` header (AUTHORIZER_CACHE_SECONDS,
set per stage when packaging): most requests then cost one Lambda invocation, not two. It always
allows every route (a cached answer is reused for all of them) and puts its verdict in the context,
every value a string (`""` for none), as API Gateway hands it on: `auth` is `ok` or `invalid`, with
the user, session and site ids, the key's `kid` and the token's expiry. The API Lambda then answers
401 unless `auth == "ok"`, and checks on every request what a cached verdict cannot know: expiry,
a retired key, revocation, the user's active flag and the site role.

It never denies (a denial could only be API Gateway's canned body) and never raises — except when
the signing key itself cannot be loaded (Secrets Manager unreachable on a cold start): API Gateway
never caches a failure and answers it with the AUTHORIZER_FAILURE Gateway Response (the 503
envelope), whereas an "unavailable" verdict would be cached for the token.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from chalice import AuthResponse, Blueprint

from chalicelib.auth import tokens

log = logging.getLogger(__name__)

bp = Blueprint(__name__)

OK, INVALID = "ok", "invalid"


def evaluate(authorization: str | None) -> dict[str, str]:
    """The verdict on an Authorization header, as a context of strings."""
    token = tokens.bearer_token(authorization)
    if token is None:  # one spelling per token: extra spaces, tabs or padding are refused
        return {"auth": INVALID, "reason": "not a bearer token in compact form"}
    try:
        claims = tokens.verify(token)
    except tokens.InvalidToken as exc:
        return {"auth": INVALID, "reason": str(exc)[:200]}
    except tokens.KeysUnavailable:
        log.exception("authorizer: the signing keys cannot be loaded")
        raise  # not cached by API Gateway: the AUTHORIZER_FAILURE Gateway Response (503)
    except Exception:  # a token no check anticipated: refused, never a crash
        log.exception("authorizer: unexpected error verifying a token")
        return {"auth": INVALID, "reason": "unverifiable"}
    return {
        "auth": OK,
        "user_id": str(claims.user_id),
        "session_id": claims.session_id,
        "site_id": "" if claims.site_id is None else str(claims.site_id),
        "kid": claims.key_id,
        "expires_at": str(claims.expires_at),
        "issued_at": str(claims.issued_at),
        "auth_time_ms": str(claims.auth_time_ms),
        "token_id": claims.token_id,
    }


@bp.authorizer(ttl_seconds=0)  # the packaged template sets the stage's AUTHORIZER_CACHE_SECONDS
def jwt_authorizer(auth_request: Any) -> AuthResponse:
    context = evaluate(auth_request.token)
    principal = context.get("user_id", "anonymous")
    return AuthResponse(routes=["*"], principal_id=principal, context=context)


def _prime_for_snapshot() -> None:
    """A SnapStart init (nobody waits for it) loads the signing keys, so a restored copy's first
    token needs no Secrets Manager call; if they cannot be loaded now, the first request retries."""
    try:
        tokens.load_keys()
    except tokens.KeysUnavailable:
        log.warning("authorizer: the signing keys could not be loaded at init", exc_info=True)


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    _prime_for_snapshot()
