"""The API Gateway authorizer: its own Lambda, so it imports only chalice, PyJWT and redis.

It never denies and never raises: a denial could only produce API Gateway's canned body (no
envelope, no CORS headers), and an exception drops the connection under `chalice local`. Instead it
always allows and records the outcome in the context, as strings (API Gateway stringifies every
value): `auth` is `ok`, `invalid`, `unavailable` or `error`. The API's middleware answers 401/503
unless `auth == "ok"`. Results are never cached (`ttl_seconds=0`) so a logout takes effect at once.
"""
from __future__ import annotations

import logging

from chalice import AuthResponse, Blueprint

from chalicelib.auth import sessions, tokens
from chalicelib.config import ConfigError
from chalicelib.errors import ServiceUnavailable

log = logging.getLogger(__name__)

bp = Blueprint(__name__)

OK, INVALID, UNAVAILABLE, ERROR = "ok", "invalid", "unavailable", "error"


def _bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def evaluate(authorization: str | None) -> dict[str, str]:
    """The authorizer's verdict on an Authorization header, as a context of strings."""
    token = _bearer_token(authorization)
    if token is None:
        return {"auth": INVALID, "reason": "not a bearer token"}
    try:
        claims = tokens.verify(token)
        if sessions.is_revoked(claims):
            return {"auth": INVALID, "reason": "revoked"}
    except tokens.InvalidToken as exc:
        return {"auth": INVALID, "reason": str(exc)[:200]}
    except ServiceUnavailable:
        return {"auth": UNAVAILABLE}
    except ConfigError:
        log.exception("authorizer configuration error")
        return {"auth": ERROR}
    except Exception:  # never raise out of an authorizer
        log.exception("authorizer failed")
        return {"auth": ERROR}
    return {
        "auth": OK,
        "user_id": str(claims.user_id),
        "session_id": claims.session_id,
        "site_id": "" if claims.site_id is None else str(claims.site_id),
        "expires_at": str(claims.expires_at),
        "issued_at": str(claims.issued_at),
        "auth_time_ms": str(claims.auth_time_ms),
        "token_id": claims.token_id,
    }


@bp.authorizer(ttl_seconds=0)
def jwt_authorizer(auth_request):
    context = evaluate(auth_request.token)
    principal = context.get("user_id", "anonymous")
    return AuthResponse(routes=["*"], principal_id=principal, context=context)
