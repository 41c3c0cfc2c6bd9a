"""Who is calling, with what rights: read from the database on every request.

The token only says who and which site; whether the user is still active and what role they hold
on that (still active) site is one query per request, so changes apply on the next request.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from chalicelib.errors import AuthenticationFailed, Forbidden, SiteContextRequired
from chalicelib.models import WRITE_ROLES, Site, SiteMembership, User


@dataclass(frozen=True)
class TokenContext:
    """What the authorizer vouched for (strings in the request context, parsed)."""
    user_id: int
    session_id: str
    site_id: int | None
    expires_at: int
    issued_at: int
    auth_time_ms: int


@dataclass(frozen=True)
class Principal:
    user_id: int
    session_id: str
    site_id: int | None  # None unless the token's site is active and the user a member of it
    role: str | None
    expires_at: int
    issued_at: int
    auth_time_ms: int

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES


def token_context(request: Any) -> TokenContext:
    auth = (request.context or {}).get("authorizer") or {}
    if auth.get("auth") != "ok":  # the middleware already refused this; belt and braces
        raise AuthenticationFailed("Invalid or expired token")
    try:
        site = str(auth.get("site_id") or "")
        return TokenContext(
            user_id=int(auth["user_id"]), session_id=str(auth["session_id"]),
            site_id=int(site) if site else None,
            expires_at=int(auth["expires_at"]), issued_at=int(auth["issued_at"]),
            auth_time_ms=int(auth["auth_time_ms"]),
        )
    except (KeyError, TypeError, ValueError):
        raise AuthenticationFailed("Invalid or expired token") from None


# Built once per container, with bound parameters: building this select (and its cache key) on
# every request cost more CPU than PostgreSQL needs to answer it.
_CALLER = (
    select(User.is_active, SiteMembership.role)
    .outerjoin(SiteMembership, and_(
        SiteMembership.user_id == User.id,
        SiteMembership.site_id == bindparam("site_id"),
        SiteMembership.site_id.in_(select(Site.id).where(Site.is_active)),
    ))
    .where(User.id == bindparam("user_id"))
)


def load(session: Session, request: Any, *, site_required: bool = False,
         write: bool = False) -> Principal:
    """The caller, checked against the database: 401 for an unknown or inactive user, then
    403 SITE_CONTEXT_REQUIRED, then 403 for a role that may not write."""
    ctx = token_context(request)
    row = session.execute(_CALLER, {
        "user_id": ctx.user_id, "site_id": ctx.site_id if ctx.site_id is not None else -1,
    }).first()
    if row is None or not row.is_active:
        raise AuthenticationFailed("Invalid or expired token")
    role = row.role
    principal = Principal(
        user_id=ctx.user_id, session_id=ctx.session_id,
        site_id=ctx.site_id if role is not None else None, role=role,
        expires_at=ctx.expires_at, issued_at=ctx.issued_at, auth_time_ms=ctx.auth_time_ms,
    )
    if (site_required or write) and principal.site_id is None:
        raise SiteContextRequired()
    if write and not principal.can_write:
        raise Forbidden("Your role on this site does not allow changes")
    return principal
