"""Login lockout and rate limits, kept in Redis and updated atomically by Lua scripts.

Lockout reserves an attempt *before* the password is checked, so twenty concurrent wrong passwords
for one user let at most LOGIN_MAX_FAILURES of them be evaluated; a password change's wrong current
password counts too. Rate limits are fixed one-minute
windows (aligned to the minute) per client IP (login) and per user (everything authenticated; that
count rides in the request's one Redis round trip, `auth.guard`). `Retry-After` is the whole
seconds until the window or the lock ends, never more (so 0 in its last second).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.cache import Lua, get_redis, redis_errors
from chalicelib.config import get_settings
from chalicelib.errors import AccountLocked, RateLimited
from chalicelib.kit import usernames

WINDOW_SECONDS = 60

# KEYS[1] window counter; ARGV[1] milliseconds until it may go (the window's end). Returns the count.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# KEYS[1] the client's login window counter, KEYS[2] the username's failure counter;
# ARGV[1] milliseconds until the window's counter may go, ARGV[2] login rate per minute, ARGV[3] max
# failures, ARGV[4] lockout seconds. Returns {window count, locked (0/1), milliseconds left on the
# lock}. Over the rate limit nothing is reserved. A lock reports its time left (a counter somehow
# without a ttl gets one rather than locking the account for ever); otherwise the attempt is
# counted as a failure until it succeeds.
_LOGIN = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return {n, 0, 0} end
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= tonumber(ARGV[3]) then
  local left = redis.call('PTTL', KEYS[2])
  if left < 0 then
    redis.call('EXPIRE', KEYS[2], ARGV[4])
    left = tonumber(ARGV[4]) * 1000
  end
  return {n, 1, left}
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {n, 0, 0}
"""

# A password change's check of the current password: the lockout alone, as a login has it.
# KEYS[1] the username's failure counter; ARGV[1] max failures, ARGV[2] lockout seconds. Returns
# {locked (0/1), milliseconds left on the lock}.
_PASSWORD = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    left = tonumber(ARGV[2]) * 1000
  end
  return {1, left}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {0, 0}
"""

# KEYS[1] failure counter. Gives back one reserved attempt (never below zero).
_RELEASE_ATTEMPT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""

_hit = Lua(_HIT)
_login = Lua(_LOGIN)
_password = Lua(_PASSWORD)
_release = Lua(_RELEASE_ATTEMPT)


def window(now: float | None = None) -> tuple[int, int]:
    """(this window's number, its end in unix seconds)."""
    now = time.time() if now is None else now
    number = int(now // WINDOW_SECONDS)
    return number, (number + 1) * WINDOW_SECONDS


def counter_ttl_ms(end: float, now: float | None = None) -> int:
    """How long a window's counter is kept: until the window ends, plus a second. Relative, so
    Redis's clock need not agree with ours (the counter's name carries the window anyway)."""
    now = time.time() if now is None else now
    return max(1, int((end - now) * 1000)) + 1000


def seconds_until(end: float, now: float | None = None) -> int:
    """Whole seconds until `end`, never more than the real wait."""
    now = time.time() if now is None else now
    return max(0, int(end - now))


def failures_key(username: str) -> str:
    """The lockout counter of every spelling of one account (the fold of chalicelib.kit.usernames)."""
    return f"login:failures:{usernames.fold(username)}"


def login_window_key(source_ip: str, number: int) -> str:
    return f"ratelimit:login:{source_ip}:{number}"


def invitation_window_key(source_ip: str, number: int) -> str:
    return f"ratelimit:invitation:{source_ip}:{number}"


def api_window_key(user_id: int | str, number: int) -> str:
    return f"ratelimit:api:{user_id}:{number}"


def search_window_key(user_id: int | str, number: int) -> str:
    return f"ratelimit:search:{user_id}:{number}"


def check_login_rate(source_ip: str) -> None:
    """A login attempt whose body could not be read: it counts towards the client's limit only."""
    _check_rate(login_window_key, source_ip)


def check_invitation_rate(source_ip: str) -> None:
    """An invitation's preview or accept: limited per client IP like logins, in a window of their
    own (shared by the two)."""
    _check_rate(invitation_window_key, source_ip)


def _check_rate(key: Callable[[str, int], str], source_ip: str) -> None:
    number, end = window()
    with redis_errors():
        count = _hit(keys=[key(source_ip, number)], args=[counter_ttl_ms(end)])
    if int(count) > get_settings().login_rate_per_minute:
        raise RateLimited(retry_after=seconds_until(end))


def reserve_login_attempt(source_ip: str, username: str) -> None:
    """One round trip: the client's rate limit, then the username's lockout; the attempt counts as
    a failure until it succeeds (`clear_login_failures`)."""
    settings = get_settings()
    number, end = window()
    with redis_errors():
        count, locked, left_ms = _login(
            keys=[login_window_key(source_ip, number), failures_key(username)],
            args=[
                counter_ttl_ms(end),
                settings.login_rate_per_minute,
                settings.login_max_failures,
                settings.login_lockout_seconds,
            ],
        )
    if int(count) > settings.login_rate_per_minute:
        raise RateLimited(retry_after=seconds_until(end))
    if int(locked):
        raise AccountLocked(retry_after=int(left_ms) // 1000)


def reserve_password_attempt(username: str) -> None:
    """A password change's current password is about to be checked: 429 when the username is
    locked out, else the attempt counts as a failed login until it succeeds (one round trip)."""
    settings = get_settings()
    with redis_errors():
        locked, left_ms = _password(
            keys=[failures_key(username)], args=[settings.login_max_failures, settings.login_lockout_seconds]
        )
    if int(locked):
        raise AccountLocked(retry_after=int(left_ms) // 1000)


def release_login_attempt(username: str) -> None:
    """Give back an attempt whose password was never checked (the database failed). Best effort:
    the caller is already failing with the original error."""
    try:
        with redis_errors():
            _release(keys=[failures_key(username)])
    except Exception:
        pass


def login_failures(username: str) -> int:
    """The username's failed attempts counted now (LOGIN_MAX_FAILURES of them: locked)."""
    with redis_errors():
        return int(get_redis().get(failures_key(username)) or 0)


def clear_login_failures(username: str) -> None:
    """A successful login (or `cli unlock`) resets the count."""
    with redis_errors():
        get_redis().delete(failures_key(username))
