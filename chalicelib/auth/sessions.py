"""Session revocation, kept in Redis only as long as the tokens it kills could live.

Two kinds of entry: a revoked session (`logout`), and a per-user "not before" time that ends every
session the user had (`set-password`). The authorizer reads both in one round trip.
"""
from __future__ import annotations

import time

from chalicelib.auth.tokens import Claims
from chalicelib.cache import get_redis, redis_errors
from chalicelib.config import get_settings


def _session_key(session_id: str) -> str:
    return f"revoked:session:{session_id}"


def _user_key(user_id: int) -> str:
    return f"revoked:user-before:{user_id}"


def is_revoked(claims: Claims) -> bool:
    with redis_errors():
        session_flag, not_before = get_redis().mget(
            _session_key(claims.session_id), _user_key(claims.user_id))
    if session_flag is not None:
        return True
    return not_before is not None and claims.issued_at < int(not_before)


def revoke_session(claims: Claims) -> None:
    """Logout: every token of this session, site-switched ones included, dies now."""
    ttl = max(1, claims.expires_at - int(time.time()) + 1)
    with redis_errors():
        get_redis().set(_session_key(claims.session_id), "1", ex=ttl)


def revoke_all_sessions(user_id: int) -> None:
    """End every session the user has now (tokens issued from the next second on stay valid)."""
    ttl = get_settings().jwt_ttl_seconds + 60
    with redis_errors():
        get_redis().set(_user_key(user_id), str(int(time.time()) + 1), ex=ttl)
