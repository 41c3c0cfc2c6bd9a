"""JWTs: HS256 only, every claim required and checked, `kid` naming the key.

A token says who (`sub`), which login session (`sid`) and which site (`site`, or null); rights are
never read from it. During a key rotation tokens signed with the previous key stay valid.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

import jwt

from chalicelib.config import get_settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "sid"]


class InvalidToken(Exception):
    """The token is not one of ours, or no longer valid. The reason is for logs only."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: str
    site_id: int | None
    expires_at: int
    issued_at: int
    token_id: str


def key_id(key: str) -> str:
    """A stable, non-secret name for a key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue(*, user_id: int, site_id: int | None, session_id: str | None = None,
          expires_at: int | None = None) -> tuple[str, Claims]:
    """A new token. Without a session id it starts a session; with one it keeps that session's
    expiry (switching sites never extends a session)."""
    settings = get_settings()
    key = settings.signing_key()
    now = int(time.time())
    claims = Claims(
        user_id=user_id,
        session_id=session_id or uuid.uuid4().hex,
        site_id=site_id,
        expires_at=expires_at if expires_at is not None else now + settings.jwt_ttl_seconds,
        issued_at=now,
        token_id=uuid.uuid4().hex,
    )
    payload = {
        "sub": str(user_id), "sid": claims.session_id, "site": site_id,
        "iat": now, "exp": claims.expires_at, "jti": claims.token_id,
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
    }
    token = jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": key_id(key)})
    return token, claims


def _keys() -> dict[str, str]:
    settings = get_settings()
    keys = {}
    previous = settings.previous_signing_key()
    if previous:
        keys[key_id(previous)] = previous
    current = settings.signing_key()
    keys[key_id(current)] = current
    return keys


def verify(token: str) -> Claims:
    """Check signature, algorithm, expiry, issuer and audience; raise InvalidToken otherwise."""
    settings = get_settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    key = _keys().get(header.get("kid")) if isinstance(header.get("kid"), str) else None
    if key is None:
        raise InvalidToken("unknown or missing kid")
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer, audience=settings.jwt_audience,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    try:
        user_id = int(payload["sub"])
        site = payload.get("site")
        if site is not None and (not isinstance(site, int) or isinstance(site, bool)):
            raise ValueError("site")
        session_id, token_id = payload["sid"], payload["jti"]
        if not isinstance(session_id, str) or not session_id or not isinstance(token_id, str):
            raise ValueError("sid/jti")
        return Claims(user_id=user_id, session_id=session_id, site_id=site,
                      expires_at=int(payload["exp"]), issued_at=int(payload["iat"]), token_id=token_id)
    except (TypeError, ValueError) as exc:
        raise InvalidToken(f"bad claim: {exc}") from None
