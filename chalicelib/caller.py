"""Who is calling, with what rights: read from the database on every request.

The token only says who and which site; whether the user is still active and what role they hold
on that (still active) site is read on every request, so changes apply on the next one. This is the
one definition of an *active membership* (a membership of an active site); the sites domain lists
memberships with `memberships()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session

from chalicelib.errors import AuthenticationFailed, Forbidden, SiteContextRequired
from chalicelib.models import ROLES, WRITE_ROLES, Site, SiteMembership, User


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


def memberships() -> Select[Any]:
    """Active memberships: (site id, name, description, created_at, user id, role) for every
    membership of an active site."""
    return (
        select(Site.id, Site.name, Site.description, Site.created_at, SiteMembership.user_id,
               SiteMembership.role)
        .join(SiteMembership, SiteMembership.site_id == Site.id)
        .where(Site.is_active)
    )


class SiteSummary(BaseModel):
    """A site as its member sees it in lists: with the member's role."""
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    description: str | None
    role: Literal[ROLES] = Field(description="the caller's role on this site")  # type: ignore[valid-type]


def site_summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "role": row.role}


def sites_of(session: Session, *, user_id: int) -> list[dict[str, Any]]:
    """The user's active sites, by name, each with the user's role."""
    rows = session.execute(memberships().where(SiteMembership.user_id == user_id).order_by(Site.name, Site.id))
    return [site_summary(row) for row in rows]


def membership(session: Session, *, user_id: int, site_id: int) -> dict[str, Any] | None:
    """The site summary when the user is an active member of that active site, else None."""
    row = session.execute(memberships().where(SiteMembership.user_id == user_id, Site.id == site_id)).first()
    return site_summary(row) if row else None


# Built once per container, with bound parameters: building this select (and its cache key) on
# every request cost more CPU than PostgreSQL needs to answer it.
_ACTIVE = memberships().subquery("active_membership")
RIGHTS = (
    select(User.is_active, _ACTIVE.c.role)
    .outerjoin(_ACTIVE, and_(_ACTIVE.c.user_id == User.id, _ACTIVE.c.id == bindparam("site_id")))
    .where(User.id == bindparam("user_id"))
)


def rights(session: Session, token: TokenContext, *, site_id: int | None) -> str | None:
    """The caller's role on `site_id` (None when not an active member of that active site);
    401 for an unknown or inactive user."""
    row = session.execute(RIGHTS, {"user_id": token.user_id,
                                   "site_id": site_id if site_id is not None else -1}).first()
    if row is None or not row.is_active:
        raise AuthenticationFailed("Invalid or expired token")
    return row.role


def load(session: Session, token: TokenContext, *, site_required: bool = False,
         write: bool = False) -> Principal:
    """The caller, checked against the database: 401 for an unknown or inactive user, then
    403 SITE_CONTEXT_REQUIRED, then 403 for a role that may not write."""
    role = rights(session, token, site_id=token.site_id)
    principal = Principal(
        user_id=token.user_id, session_id=token.session_id,
        site_id=token.site_id if role is not None else None, role=role,
        expires_at=token.expires_at, issued_at=token.issued_at, auth_time_ms=token.auth_time_ms,
    )
    if (site_required or write) and principal.site_id is None:
        raise SiteContextRequired()
    if write and not principal.can_write:
        raise Forbidden("Your role on this site does not allow changes")
    return principal
