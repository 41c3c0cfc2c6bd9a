"""What every authenticated request checks in the API Lambda, whatever API Gateway cached: the
token's expiry and key (from the authorizer's context), then — in one Redis round trip — that its
session was not revoked and the user's rate limit. Logout ends the session in that same round trip.
Redis unreachable: 503, never accepted unchecked.
"""
from __future__ import annotations

import time
from typing import Any

from chalicelib.auth import limits, sessions, tokens
from chalicelib.cache import redis_errors, script
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationFailed, RateLimited

# KEYS[1] the revoked-session flag, KEYS[2] the user's not-before (ms), KEYS[3] the user's window
# counter; ARGV[1] milliseconds to keep the counter (to its window's end), ARGV[2] 1 to end the session (logout), ARGV[3] its ttl,
# ARGV[4] the rate limit. Returns {revoked (0/1), not-before or "", window count}. A revoked request
# is not counted; a logout over the limit ends nothing.
_GUARD = """
local revoked = redis.call('EXISTS', KEYS[1])
local not_before = redis.call('GET', KEYS[2]) or ''
if revoked == 1 then return {1, not_before, 0} end
local n = redis.call('INCR', KEYS[3])
if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
if ARGV[2] == '1' and n <= tonumber(ARGV[4]) then redis.call('SET', KEYS[1], '1', 'EX', ARGV[3]) end
return {0, not_before, n}
"""
_guard = script(_GUARD)

INVALID = "Invalid or expired token"


def check(auth: dict[str, Any], *, end_session: bool = False) -> str:
    """The user id of a request the authorizer vouched for, once it passes every per-request check;
    401 or 429 otherwise. Never read a missing flag as success: deployed, every value is a string."""
    if auth.get("auth") != "ok" or not auth.get("user_id"):
        raise AuthenticationFailed(INVALID)
    try:
        user_id, session_id = int(auth["user_id"]), str(auth["session_id"])
        expires_at, auth_time_ms = int(auth["expires_at"]), int(auth["auth_time_ms"])
        kid = str(auth["kid"])
    except (KeyError, TypeError, ValueError):
        raise AuthenticationFailed(INVALID) from None
    if expires_at <= time.time():  # a cached verdict may outlive its token
        raise AuthenticationFailed(INVALID)
    if not tokens.known_kid(kid):  # or a key retired since it was cached
        raise AuthenticationFailed(INVALID)
    number, end = limits.window()
    with redis_errors():
        revoked, not_before, count = _guard(
            keys=[sessions.session_key(session_id), sessions.user_key(user_id),
                  limits.api_window_key(user_id, number)],
            args=[limits.counter_ttl_ms(end), "1" if end_session else "0", sessions.session_ttl(expires_at),
                  get_settings().api_rate_per_minute])
    if int(revoked) or (not_before and auth_time_ms <= int(not_before)):
        raise AuthenticationFailed(INVALID)
    if int(count) > get_settings().api_rate_per_minute:
        raise RateLimited(retry_after=limits.seconds_until(end))
    return str(user_id)
