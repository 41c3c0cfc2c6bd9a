"""What every authenticated request checks in the API Lambda, whatever API Gateway cached: the
`Authorization` header's spelling, the token's expiry and key (from the authorizer's context), then —
in one Redis round trip — that its session was not revoked, the user's rate limit and, for a
substring search, the user's search limit (a search whose terms are common reads tens of thousands of
rows: a few users repeating one must not saturate the database). Logout ends the session in that
same round trip. Logout and password changes are exempt from the rate limit: a flood from a stolen
token must not stop its owner from ending sessions. Redis unreachable: 503, never accepted unchecked.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.auth import limits, sessions, tokens
from chalicelib.cache import Lua, Pending, redis_errors
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationFailed, RateLimited

# KEYS[1] the revoked-session flag, KEYS[2] the user's not-before (ms), KEYS[3] the user's window
# counter, KEYS[4] the user's search counter; ARGV[1] milliseconds to keep the counters (to their
# window's end), ARGV[2] 1 to end the session (logout), ARGV[3] its ttl, ARGV[4] the rate limit,
# ARGV[5] 1 for a search, ARGV[6] 1 to end every session of the user (logout with "all": the
# not-before raised to ARGV[7], now in ms, kept ARGV[8] seconds), ARGV[9] 1 for a request exempt from
# the rate limit (neither counted nor refused: logout, password change). Returns {revoked (0/1),
# not-before or "", window count, search count}. A revoked request is not counted; a search over
# the rate limit is not counted as a search.
_GUARD = """
local revoked = redis.call('EXISTS', KEYS[1])
local not_before = redis.call('GET', KEYS[2]) or ''
if revoked == 1 then return {1, not_before, 0, 0} end
local n = 0
if ARGV[9] ~= '1' then
  n = redis.call('INCR', KEYS[3])
  if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
end
local within = n <= tonumber(ARGV[4])
if ARGV[2] == '1' and within then redis.call('SET', KEYS[1], '1', 'EX', ARGV[3]) end
if ARGV[6] == '1' and within then
  local wanted = tonumber(ARGV[7])
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if current > wanted then wanted = current end
  redis.call('SET', KEYS[2], string.format('%d', wanted), 'EX', ARGV[8])
end
local searches = 0
if ARGV[5] == '1' and within then
  searches = redis.call('INCR', KEYS[4])
  if searches == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[1]) end
end
return {0, not_before, n, searches}
"""
_guard = Lua(_GUARD)

INVALID = "Invalid or expired token"


class Verdict:
    """A request's per-request checks, started: the local ones are done, the Redis script is on
    its way. `settle()` reads its answer (once) and raises 401/429 when it says so; the middleware
    settles it after the request's first database statement, before anything acts on it."""

    def __init__(self, user_id: int, auth_time_ms: int, end: int, pending: Pending) -> None:
        self.user_id, self.auth_time_ms, self.end, self.pending = user_id, auth_time_ms, end, pending
        self.settled = False

    def settle(self) -> None:
        if self.settled:
            return
        self.settled = True
        with redis_errors():
            revoked, not_before, count, searches = self.pending.result()
        settings = get_settings()
        if int(revoked) or (not_before and self.auth_time_ms <= int(not_before)):
            raise AuthenticationFailed(INVALID)
        if int(count) > settings.api_rate_per_minute:
            raise RateLimited(retry_after=limits.seconds_until(self.end))
        if int(searches) > settings.search_rate_per_minute:
            raise RateLimited("Too many searches; retry later", retry_after=limits.seconds_until(self.end))


def start(
    auth: dict[str, Any],
    *,
    authorization: object,
    end_session: bool = False,
    end_all: bool = False,
    search: bool = False,
    exempt: bool = False,
) -> Verdict:
    """The checks of a request the authorizer vouched for: 401 now for what the header and the
    context alone show (never read a missing flag as success: deployed, every value is a string),
    then the Redis script sent, its verdict to be settled. `authorization`: the request's header,
    held to the authorizer's one spelling (a verdict cached before that rule must not let another
    spelling through); `search`: a substring search (it counts towards SEARCH_RATE_PER_MINUTE too);
    `end_session`: logout; `end_all`: logout of every session of the user (as a password change ends
    them: sessions.revoke_all_sessions); `exempt`: not counted towards API_RATE_PER_MINUTE, nor
    refused by it."""
    if tokens.bearer_token(authorization) is None:
        raise AuthenticationFailed(INVALID)
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
    settings = get_settings()
    number, end = limits.window()
    with redis_errors():
        pending = _guard.start(
            keys=[
                sessions.session_key(session_id),
                sessions.user_key(user_id),
                limits.api_window_key(user_id, number),
                limits.search_window_key(user_id, number),
            ],
            args=[
                limits.counter_ttl_ms(end),
                "1" if end_session else "0",
                sessions.session_ttl(expires_at),
                settings.api_rate_per_minute,
                "1" if search else "0",
                "1" if end_all else "0",
                tokens.now_ms(),
                settings.jwt_ttl_seconds + 60,
                "1" if exempt else "0",
            ],
        )
    return Verdict(user_id, auth_time_ms, end, pending)
