"""Login lockout and rate limits, kept in Redis and updated atomically by Lua scripts.

Lockout reserves an attempt *before* the password is checked, so twenty concurrent wrong passwords
for one user let at most LOGIN_MAX_FAILURES of them be evaluated. Rate limits are fixed one-minute
windows per client IP (login) and per user (everything authenticated).
"""
from __future__ import annotations

import time

from chalicelib.cache import get_redis, redis_errors
from chalicelib.config import get_settings
from chalicelib.errors import AccountLocked, RateLimited

# KEYS[1] failure counter; ARGV[1] max failures; ARGV[2] lockout seconds.
# Returns 0 when the attempt may go ahead (and counts it), else the seconds left on the lock.
# A counter without a ttl (it cannot happen through this module) gets one rather than locking
# the account for ever; the last second of a lock reports 1, never 0 (which would mean "go").
_RESERVE_ATTEMPT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl == -1 then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  if ttl < 1 then ttl = 1 end
  return ttl
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""

# KEYS[1] failure counter. Gives back one reserved attempt (never below zero).
_RELEASE_ATTEMPT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""

# KEYS[1] window counter; ARGV[1] window seconds. Returns {count, ttl}.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""

WINDOW_SECONDS = 60


def _failures_key(username: str) -> str:
    return f"login:failures:{username.strip().lower()}"


def reserve_login_attempt(username: str) -> None:
    """Count this attempt as a failure until it succeeds; refuse it while the account is locked."""
    settings = get_settings()
    with redis_errors():
        locked_for = get_redis().eval(_RESERVE_ATTEMPT, 1, _failures_key(username),
                                      settings.login_max_failures, settings.login_lockout_seconds)
    if int(locked_for) > 0:
        raise AccountLocked(retry_after=int(locked_for))


def release_login_attempt(username: str) -> None:
    """Give back an attempt whose password was never checked (the database failed). Best effort:
    the caller is already failing with the original error."""
    try:
        with redis_errors():
            get_redis().eval(_RELEASE_ATTEMPT, 1, _failures_key(username))
    except Exception:
        pass


def clear_login_failures(username: str) -> None:
    """A successful login (or `cli unlock`) resets the count."""
    with redis_errors():
        get_redis().delete(_failures_key(username))


def _hit(key: str, limit: int) -> None:
    window = int(time.time()) // WINDOW_SECONDS
    with redis_errors():
        count, ttl = get_redis().eval(_HIT, 1, f"{key}:{window}", WINDOW_SECONDS)
    if int(count) > limit:
        raise RateLimited(retry_after=max(1, int(ttl)))


def check_login_rate(source_ip: str) -> None:
    _hit(f"ratelimit:login:{source_ip}", get_settings().login_rate_per_minute)


def check_api_rate(user_id: str) -> None:
    _hit(f"ratelimit:api:{user_id}", get_settings().api_rate_per_minute)
