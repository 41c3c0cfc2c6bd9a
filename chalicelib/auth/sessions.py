"""Session revocation, kept in Redis only as long as the tokens it kills could live.

Two kinds of entry: a revoked session (`logout`), and a per-user "not before" time, in milliseconds,
that ends every session the user began until then (`set-password`). Sessions are compared by
when they began (the token's `auth_time`), so a site-switched token cannot outlive its session's
revocation, and a login a moment after a password change is not caught by it. Every authenticated
request reads both entries, with its rate limit, in one round trip (`auth.guard`).
"""

from __future__ import annotations

import time

from chalicelib.auth.tokens import now_ms
from chalicelib.cache import get_redis, redis_errors
from chalicelib.config import get_settings

# KEYS[1] the user's not-before, KEYS[2...] keys to delete with it; ARGV[1] now in ms; ARGV[2] ttl.
# Never moves the time backwards (two operators' clocks may disagree), always renews the ttl.
# Returns the not-before time set.
_RAISE_NOT_BEFORE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if current > wanted then wanted = current end
redis.call('SET', KEYS[1], string.format('%d', wanted), 'EX', ARGV[2])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return wanted
"""


def session_key(session_id: str) -> str:
    return f"revoked:session:{session_id}"


def user_key(user_id: int) -> str:
    return f"revoked:user-before:{user_id}"


def session_ttl(expires_at: int) -> int:
    """A revoked session's entry lives one second past the session's expiry, when its tokens die
    anyway."""
    return max(1, expires_at - int(time.time()) + 1)


def revoke_session(session_id: str, expires_at: int) -> None:
    """Every token of this session, site-switched ones included, dies now. (Logout does this in
    the request's one round trip, `auth.guard`.)"""
    with redis_errors():
        get_redis().set(session_key(session_id), "1", ex=session_ttl(expires_at))


def revoke_all_sessions(user_id: int, *, delete: tuple[str, ...] = ()) -> int:
    """End every session the user began up to now (deleting the keys `delete` in the same round
    trip); returns that time in ms: a session must begin after it to survive. The entry outlives the
    longest session that can have begun before it (JWT_TTL_SECONDS, so the command must see the
    API's value)."""
    ttl = get_settings().jwt_ttl_seconds + 60
    with redis_errors():
        return int(
            get_redis().eval(_RAISE_NOT_BEFORE, 1 + len(delete), user_key(user_id), *delete, now_ms(), ttl)
        )
