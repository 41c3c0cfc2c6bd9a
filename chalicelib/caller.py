"""Who is calling, with what rights: read from the database on every request.

The token only says who and which site; whether the user is still active and what role they hold
on that (still active) site is read on every request, so changes apply on the next one. This is the
one definition of an *active membership* (a membership of an active site); the sites domain lists
memberships with `memberships()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field
from sqlalchemy import Select, and_, bindparam, select, true
from sqlalchemy.orm import Session

from chalicelib.errors import AuthenticationFailed, Forbidden, SiteContextRequired
from chalicelib.kit.ids import Id
from chalicelib.kit.schema import Schema
from chalicelib.models import WRITE_ROLES, RoleName, Site, SiteMembership, User


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
    username: str = ""
    email: str = ""
    last_login: datetime | None = None
    site: dict[str, Any] | None = None  # the token's site as its member sees it (a site summary)
    platform_admin: bool = False  # may create sites over the API (read on every request)

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
            user_id=int(auth["user_id"]),
            session_id=str(auth["session_id"]),
            site_id=int(site) if site else None,
            expires_at=int(auth["expires_at"]),
            issued_at=int(auth["issued_at"]),
            auth_time_ms=int(auth["auth_time_ms"]),
        )
    except (KeyError, TypeError, ValueError):
        raise AuthenticationFailed("Invalid or expired token") from None


def memberships() -> Select[int, str, str | None, datetime, int, str]:
    """Active memberships: (site id, name, description, created_at, user id, role) for every
    membership of an active site."""
    return (
        select(
            Site.id, Site.name, Site.description, Site.created_at, SiteMembership.user_id, SiteMembership.role
        )
        .join(SiteMembership, SiteMembership.site_id == Site.id)
        .where(Site.is_active)
    )


class SiteSummary(Schema):
    """A site as its member sees it in lists: with the member's role."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str
    description: str | None
    role: RoleName = Field(description="the caller's role on this site")


def site_summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "role": row.role}


# The caller as the first statement of every request sees it: one row for the token's user (none
# if the account is gone), with the platform-admin flag, the user's role on one site (`site_id`:
# the token's, or the path's) and that site's details when it is an active membership. Built once
# per container, with bound parameters: building a select (and its cache key) on every request cost
# more CPU than PostgreSQL needs to answer it.
_ACTIVE = memberships().subquery("active_membership")
CALLER = (
    select(
        User.is_active.label("caller_active"),
        User.username.label("caller_username"),
        User.email.label("caller_email"),
        User.last_login.label("caller_last_login"),
        User.platform_admin.label("caller_platform_admin"),
        _ACTIVE.c.role.label("caller_role"),
        _ACTIVE.c.id.label("site_id_"),
        _ACTIVE.c.name.label("site_name"),
        _ACTIVE.c.description.label("site_description"),
        _ACTIVE.c.created_at.label("site_created_at"),
    )
    .outerjoin(_ACTIVE, and_(_ACTIVE.c.user_id == User.id, _ACTIVE.c.id == bindparam("site_id")))
    .where(User.id == bindparam("caller_id"))
    .subquery("caller")
)
MEMBER = CALLER.c.caller_role.is_not(None)  # the caller may read the site
ADMIN = CALLER.c.caller_role == "admin"


def fold(
    stmt: Select[*tuple[Any, ...]] | None = None,
    *,
    when: Any = MEMBER,
    order_by: Callable[[Any], list[Any]] | None = None,
    extra: tuple[Any, ...] = (),
) -> Select[Any]:
    """`stmt` in the same round trip as the caller's rights: the caller's row joined to `stmt`'s
    rows (a LATERAL subquery that runs only `when` the caller may see them, by default when the
    caller is a member of the site). Without `stmt`, the caller's row alone. `order_by(columns)`
    orders the outer rows by the subquery's columns (its own ORDER BY does not carry over);
    `extra` adds columns (scalar subqueries: a site's counters)."""
    if stmt is None:
        return select(*CALLER.c, *extra)
    item = stmt.where(when).lateral("item")
    folded = select(*CALLER.c, *extra, *item.c).select_from(CALLER.outerjoin(item, true()))
    return folded.order_by(*order_by(item.c)) if order_by else folded


@dataclass(frozen=True)
class Caller:
    """The caller's row: who, and what they are on the site asked about."""

    row: Any

    @property
    def role(self) -> str | None:
        role: str | None = self.row.caller_role
        return role

    def site(self) -> dict[str, Any] | None:
        """The site asked about, as its member sees it, or None when not an active member."""
        if self.row.caller_role is None:
            return None
        return {
            "id": self.row.site_id_,
            "name": self.row.site_name,
            "description": self.row.site_description,
            "role": self.row.caller_role,
        }


class Folded(list[Any]):
    """The rows of a folded statement; `head` is the first row of the result, which carries the
    caller's columns and any `extra` columns even when the statement found nothing."""

    head: Any = None


def run(
    session: Session,
    token: TokenContext,
    stmt: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    site_id: int | None,
    key: str = "id",
) -> tuple[Caller, Folded]:
    """Execute a `fold()`: (the caller, the rows of the folded statement — those whose `key`
    column is not null). 401 for an unknown or inactive user."""
    rows = session.execute(
        stmt,
        {**(params or {}), "caller_id": token.user_id, "site_id": site_id if site_id is not None else -1},
    ).all()
    if not rows or not rows[0].caller_active:
        raise AuthenticationFailed("Invalid or expired token")
    folded = (
        Folded(row for row in rows if getattr(row, key, None) is not None)
        if key in rows[0]._fields
        else Folded()
    )
    folded.head = rows[0]
    return Caller(rows[0]), folded


RIGHTS = fold()


def require_active(session: Session, user_id: int) -> None:
    """401, as `run` answers it, unless `user_id` is an active account."""
    row = session.execute(RIGHTS, {"caller_id": user_id, "site_id": -1}).first()
    if row is None or not row.caller_active:
        raise AuthenticationFailed("Invalid or expired token")


# The caller's active sites, by name, with the rights: what login, `GET /api/auth/sites` and
# `GET /api/sites` list.
MY_SITES = fold(
    memberships().where(SiteMembership.user_id == bindparam("caller_id")),
    when=true(),
    order_by=lambda columns: [columns.name, columns.id],
)


def principal(
    token: TokenContext,
    caller: Caller,
    *,
    site_required: bool = False,
    write: bool = False,
    platform_admin: bool = False,
) -> Principal:
    """The caller at the token's site, held to what the endpoint requires: 403
    SITE_CONTEXT_REQUIRED, then 403 for a role that may not write, or for a caller who is not a
    platform admin."""
    role = caller.role
    found = Principal(
        user_id=token.user_id,
        session_id=token.session_id,
        site_id=token.site_id if role is not None else None,
        role=role,
        expires_at=token.expires_at,
        issued_at=token.issued_at,
        auth_time_ms=token.auth_time_ms,
        username=caller.row.caller_username,
        email=caller.row.caller_email,
        last_login=caller.row.caller_last_login,
        site=caller.site(),
        platform_admin=bool(caller.row.caller_platform_admin),
    )
    if (site_required or write) and found.site_id is None:
        raise SiteContextRequired()
    if write and not found.can_write:
        raise Forbidden("Your role on this site does not allow changes")
    if platform_admin and not found.platform_admin:
        raise Forbidden("Only platform admins may do this")
    return found


def admin_only(role: str | None, message: str = "Only the site's admins may do this") -> None:
    """The 403 step of /api/sites/{id}/...: a member of the site who is not its admin. A non-member
    (role None) passes here and gets the 404 later, after the 400s."""
    if role is not None and role != "admin":
        raise Forbidden(message)
