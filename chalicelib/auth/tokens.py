"""JWTs: HS256 only, every claim required and checked, `kid` naming the key.

A token says who (`sub`), which login session (`sid`), when that session began (`auth_time`, to the
millisecond: a password change ends the sessions that began before it) and which site (`site`, or
null); rights are never read from it. During a key rotation tokens signed with the previous key stay
valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from chalicelib.config import Settings, get_settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "sid", "auth_time"]
MAX_DB_ID = 2**31 - 1  # ids are PostgreSQL integers
_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,9}")
_OPAQUE_ID = re.compile(r"[0-9a-f]{32}")
# `Authorization: Bearer <token>`: the scheme in any case, one space, a compact JWS (three base64url
# parts, unpadded). Nothing else is read as a token, so one token has one spelling (and one entry in
# API Gateway's authorizer cache, which is keyed by the header).
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


class InvalidToken(Exception):
    """The token is not one of ours, or no longer valid. The reason is for logs only."""


class KeysUnavailable(Exception):
    """The signing keys could not be loaded (configuration, or Secrets Manager unreachable)."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: str
    site_id: int | None
    expires_at: int
    issued_at: int
    token_id: str
    auth_time_ms: int  # when the session began (the login), in milliseconds since the epoch
    key_id: str = ""  # the kid of the key that signed it


def _canonical_base64url(part: str) -> bool:
    """Whether `part` is the one unpadded base64url spelling of its bytes (base64 ignores the unused
    low bits of a last character, so `...Q` and `...R` may decode alike)."""
    if len(part) % 4 == 1:
        return False
    try:
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") == part


def bearer_token(header: object) -> str | None:
    """The token of an `Authorization` header in its one accepted spelling, else None (a 401)."""
    if not isinstance(header, str):
        return None
    match = _BEARER.fullmatch(header)
    if match is None:
        return None
    token = match.group(1)
    return token if all(_canonical_base64url(part) for part in token.split(".")) else None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def key_id(key: str) -> str:
    """A stable, non-secret name for a key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue(
    *,
    user_id: int,
    site_id: int | None,
    session_id: str | None = None,
    expires_at: int | None = None,
    auth_time_ms: int | None = None,
) -> tuple[str, Claims]:
    """A new token. Without a session id it starts a session; with one it keeps that session's
    expiry and start (switching sites never extends a session nor saves it from a revocation)."""
    settings = get_settings()
    key = settings.signing_key()
    now = int(time.time())
    if auth_time_ms is None:
        auth_time_ms = now_ms()
    claims = Claims(
        user_id=user_id,
        session_id=session_id or uuid.uuid4().hex,
        site_id=site_id,
        expires_at=expires_at if expires_at is not None else now + settings.jwt_ttl_seconds,
        issued_at=now,
        token_id=uuid.uuid4().hex,
        auth_time_ms=auth_time_ms,
        key_id=key_id(key),
    )
    payload = {
        "sub": str(user_id),
        "sid": claims.session_id,
        "site": site_id,
        "iat": now,
        "exp": claims.expires_at,
        "jti": claims.token_id,
        "auth_time": auth_time_ms / 1000,  # a NumericDate may have a fraction (RFC 7519)
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    token = jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": key_id(key)})
    return token, claims


def _keys(*, refresh: bool = False) -> dict[str, str]:
    """{kid: key} for the current key and, during a rotation, the previous one; KeysUnavailable when
    they cannot be loaded."""
    settings = get_settings()
    keys = {}
    try:
        previous = settings.previous_signing_key(refresh=refresh)
        current = settings.signing_key(refresh=refresh)
    except Exception as exc:
        raise KeysUnavailable(str(exc)) from exc
    if previous:
        keys[key_id(previous)] = previous
    keys[key_id(current)] = current
    return keys


# A kid this container does not know may name a key rotated in after the container loaded its keys:
# the keys are loaded again, at most once per REFRESH_INTERVAL_S (a forged kid must not turn every
# request into a Secrets Manager call).
REFRESH_INTERVAL_S = 60.0
_last_refresh = 0.0


def _keys_knowing(kid: object) -> dict[str, str]:
    global _last_refresh
    keys = _keys()
    if isinstance(kid, str) and kid not in keys and time.monotonic() - _last_refresh >= REFRESH_INTERVAL_S:
        _last_refresh = time.monotonic()
        keys = _keys(refresh=True)
    return keys


def known_kid(kid: str) -> bool:
    """Whether `kid` names the current or the previous key (loading them again at most once a
    minute for a kid not seen before): the API's check of a verdict API Gateway may have cached
    before a key was retired."""
    return kid in _keys_knowing(kid)


# Tokens this container has verified, with their claims. A client sends the same token with every
# request, and checking it again (decoding, signature, claims) was most of the authorizer's CPU.
# Only expiry depends on the time and is checked again on every hit; the key set, issuer and
# audience are part of the cache key, so a rotation or another configuration never reuses a verdict.
# Revocation is not cached: the authorizer asks Redis on every request.
_VERIFIED_MAX = 1024
_verified: dict[tuple[str, ...], Claims] = {}


def load_keys() -> None:
    """Load the signing keys now (KeysUnavailable when they cannot be)."""
    _keys()


def forget_verified() -> None:
    """Drop the verified-token cache and allow the keys to be loaded again at once (after a
    SnapStart restore: every restored copy would otherwise share the snapshot's)."""
    global _last_refresh
    _verified.clear()
    _last_refresh = 0.0


def verify(token: str) -> Claims:
    """Check signature, algorithm, expiry, issuer and audience; raise InvalidToken otherwise."""
    settings = get_settings()
    keys = _keys_knowing(_unverified_kid(token))
    cache_key = (token, settings.jwt_issuer, settings.jwt_audience, *keys)
    cached = _verified.get(cache_key)
    if cached is not None:
        if cached.expires_at > time.time():
            return cached
        _verified.pop(cache_key, None)
        raise InvalidToken("Signature has expired")
    claims = _verify(token, keys, settings)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[cache_key] = claims
    return claims


def _unverified_kid(token: str) -> object:
    try:
        return jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None


def _verify(token: str, keys: dict[str, str], settings: Settings) -> Claims:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise InvalidToken("unknown or missing kid")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return _claims(payload, kid)


def _claims(payload: dict[str, Any], kid: str) -> Claims:
    """Our own claims, checked as strictly as the registered ones: a token that passed the
    signature check but carries values we never issue is refused, not coerced."""
    sub, site, sid, jti = payload["sub"], payload.get("site"), payload["sid"], payload["jti"]
    auth_time = payload["auth_time"]
    if not isinstance(sub, str) or not _DECIMAL_ID.fullmatch(sub) or int(sub) > MAX_DB_ID:
        raise InvalidToken("bad claim: sub")
    if site is not None and (type(site) is not int or not 1 <= site <= MAX_DB_ID):
        raise InvalidToken("bad claim: site")
    if not isinstance(sid, str) or not _OPAQUE_ID.fullmatch(sid):
        raise InvalidToken("bad claim: sid")
    if not isinstance(jti, str) or not jti:
        raise InvalidToken("bad claim: jti")
    if (
        type(auth_time) not in (int, float)
        or not math.isfinite(auth_time)
        or auth_time <= 0
        or auth_time > int(payload["iat"]) + 1
    ):
        raise InvalidToken("bad claim: auth_time")
    return Claims(
        user_id=int(sub),
        session_id=sid,
        site_id=site,
        expires_at=int(payload["exp"]),
        issued_at=int(payload["iat"]),
        token_id=jti,
        auth_time_ms=round(auth_time * 1000),
        key_id=kid,
    )
