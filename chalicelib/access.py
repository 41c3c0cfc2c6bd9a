"""Who is calling, with what rights, and what each route requires of them.

The token only says who and which site; whether the user is still active and what role they hold
on a (still active) site is read on every request, with the request's first statement (`fold`), so
changes apply on the next one. This is the one definition of an *active membership* (a membership
of an active site); the sites domain lists memberships with `memberships()`.

A route declares what it needs (`Public`, `Token`, `SiteRole`, `SiteAdmin`, `PlatformAdmin`);
`admit` holds the caller to it in API.md's order of checks: 401, 403, 400, 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import ConfigDict, Field
from sqlalchemy import Row, Select, and_, bindparam, select, true
from sqlalchemy.orm import Session

from chalicelib.errors import ApiError, AuthenticationFailed, Forbidden, NotFound, SiteContextRequired
from chalicelib.kit.ids import Id
from chalicelib.kit.pagination import ListRead
from chalicelib.kit.schema import Schema
from chalicelib.models import WRITE_ROLES, RoleName, Site, SiteMembership, User

INVALID_TOKEN = "Invalid or expired token"
SITE_NOT_FOUND = "Site not found"

# --- what a route needs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Public:
    """No token: the authorizer is not asked, nothing is checked here."""


@dataclass(frozen=True)
class Token:
    """A valid token of an active account; no site needed."""


@dataclass(frozen=True)
class SiteRole:
    """A member of a site: the token's (`at="token"`: 403 SITE_CONTEXT_REQUIRED without an active
    membership there; `write`: 403 for a role that may not write) or the path's `{site_id}`
    (`at="path"`: 404 for anyone who is not an active member)."""

    write: bool = False
    at: Literal["token", "path"] = "token"


@dataclass(frozen=True)
class SiteAdmin:
    """An admin of the path's `{site_id}`: 403 for its other members, 404 for anyone else."""

    message: str = "Only the site's admins may do this"


@dataclass(frozen=True)
class PlatformAdmin:
    """A platform admin (no site needed): 403 for anyone else."""


Needs = Public | Token | SiteRole | SiteAdmin | PlatformAdmin


def at_path(needs: Needs) -> bool:
    """Whether the rights are read at the path's `{site_id}` (else at the token's site)."""
    return isinstance(needs, SiteAdmin) or (isinstance(needs, SiteRole) and needs.at == "path")


# --- the token and the caller ----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenContext:
    """What the authorizer vouched for (strings in the request context, parsed)."""

    user_id: int
    session_id: str
    site_id: int | None
    expires_at: int
    issued_at: int
    auth_time_ms: int


def token_context(request: Any) -> TokenContext:
    auth = (request.context or {}).get("authorizer") or {}
    if auth.get("auth") != "ok":  # the checks refused this already; belt and braces
        raise AuthenticationFailed(INVALID_TOKEN)
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
        raise AuthenticationFailed(INVALID_TOKEN) from None


class ActiveSite(NamedTuple):
    """A site the caller is an active member of, with the caller's role there."""

    id: int
    name: str
    description: str | None
    created_at: datetime
    role: str

    def summary(self) -> dict[str, Any]:
        """As the member sees it in lists (`SiteSummary`)."""
        return {"id": self.id, "name": self.name, "description": self.description, "role": self.role}


@dataclass(frozen=True)
class Rights:
    """The caller's row, as the request's first statement read it: the account, and its role on
    the site asked about (with that site) when it is an active membership."""

    active: bool
    username: str
    email: str
    last_login: datetime | None
    platform_admin: bool
    site: ActiveSite | None

    @property
    def role(self) -> str | None:
        return self.site.role if self.site is not None else None


@dataclass(frozen=True)
class Principal:
    """The caller, verified and admitted: who, and the rights at the site they were read at."""

    user_id: int
    session_id: str
    expires_at: int
    issued_at: int
    auth_time_ms: int
    username: str
    email: str
    last_login: datetime | None
    platform_admin: bool  # may create sites over the API (read on every request)
    site: ActiveSite | None  # None unless an active member of the site the rights were read at

    @property
    def site_id(self) -> int | None:
        return self.site.id if self.site is not None else None

    @property
    def role(self) -> str | None:
        return self.site.role if self.site is not None else None

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    def at_site(self) -> int:
        """The site of a route declared `SiteRole` or `SiteAdmin` (`admit` has checked it)."""
        assert self.site is not None, "declare the route with SiteRole or SiteAdmin"
        return self.site.id


# --- the statement -----------------------------------------------------------------------------------


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


class Membership(NamedTuple):
    """A row of `memberships()` (or of `MY_SITES`' sites)."""

    id: int
    name: str
    description: str | None
    created_at: datetime
    user_id: int
    role: str

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description, "role": self.role}


# The caller as the first statement of every request sees it: one row for the token's user (none
# if the account is gone), with the platform-admin flag, the user's role on one site (`site_id`:
# the token's, or the path's) and that site's details when it is an active membership. Built once
# per container, with bound parameters: building a select (and its cache key) on every request cost
# more CPU than PostgreSQL needs to answer it. `rights()` is the one reader of these columns.
_ACTIVE = memberships().subquery("active_membership")
CALLER = (
    select(
        User.is_active.label("caller_active"),
        User.username.label("caller_username"),
        User.email.label("caller_email"),
        User.last_login.label("caller_last_login"),
        User.platform_admin.label("caller_platform_admin"),
        _ACTIVE.c.role.label("caller_role"),
        _ACTIVE.c.id.label("caller_site_id"),
        _ACTIVE.c.name.label("caller_site_name"),
        _ACTIVE.c.description.label("caller_site_description"),
        _ACTIVE.c.created_at.label("caller_site_created_at"),
    )
    .outerjoin(_ACTIVE, and_(_ACTIVE.c.user_id == User.id, _ACTIVE.c.id == bindparam("site_id")))
    .where(User.id == bindparam("caller_id"))
    .subquery("caller")
)
CALLER_WIDTH = len(CALLER.c)  # the folded rows' own columns start after the caller's
MEMBER = CALLER.c.caller_role.is_not(None)  # the caller may read the site
ADMIN = CALLER.c.caller_role == "admin"


def rights(row: Row[Any] | None) -> Rights | None:
    """The caller's columns of a folded statement's first row, typed; None when the account is gone."""
    if row is None:
        return None
    active, username, email, last_login, platform_admin, role, site_id, name, description, created = row[
        :CALLER_WIDTH
    ]
    site = ActiveSite(site_id, name, description, created, role) if role is not None else None
    return Rights(bool(active), username, email, last_login, bool(platform_admin), site)


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


RIGHTS = fold()

# The caller's active sites, by name, with the rights: what `GET /api/auth/sites` and
# `GET /api/sites` list.
MY_SITES = fold(
    memberships().where(SiteMembership.user_id == bindparam("caller_id")),
    when=true(),
    order_by=lambda columns: [columns.name, columns.id],
)


class Folded(list[Row[Any]]):
    """The rows of a folded statement (those the folded part found); `head` is the first row of
    the result, which carries the caller's columns and any `extra` columns even when the
    statement found nothing."""

    head: Row[Any] | None = None


def read(
    session: Session,
    token: TokenContext,
    stmt: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    site_id: int | None,
    key: str = "id",
) -> Folded:
    """Execute a `fold()` for the token's user at `site_id`: its rows (those whose `key` column is
    not null) and its head. Nothing is checked here: that is `admit`'s."""
    rows = session.execute(
        stmt,
        {**(params or {}), "caller_id": token.user_id, "site_id": site_id if site_id is not None else -1},
    ).all()
    head = rows[0] if rows else None
    folded = (
        Folded(row for row in rows if getattr(row, key, None) is not None)
        if head is not None and key in head._fields
        else Folded()
    )
    folded.head = head
    return folded


T = TypeVar("T")


def _nothing(_rows: Folded) -> None:
    return None


@dataclass(frozen=True)
class Read(Generic[T]):
    """A route's first statement and what its rows become: `statement` is built with
    `fold()` (the caller's rights and the route's rows in one round trip), run at the site
    the route's needs name (or at `site`, for a route that reads the rights elsewhere: a site
    switch), and `shape(rows)` turns the rows it found (those whose `key` column is not null) into
    the typed result the view gets as `call.found`."""

    statement: Select[Any] = RIGHTS
    params: Mapping[str, Any] = field(default_factory=dict)
    shape: Callable[[Folded], T] = _nothing  # type: ignore[assignment]  # Read() alone: T is None
    key: str = "id"
    site: int | None | Literal["declared"] = "declared"


RIGHTS_ONLY: Read[None] = Read()

Q = TypeVar("Q")


@dataclass(frozen=True)
class Listing(Generic[Q]):
    """A list's read, found: its query, its statement's parts (position, binding) and its rows."""

    query: Q
    read: ListRead
    rows: Folded

    @property
    def head(self) -> Row[Any]:
        """The result's first row: the caller's columns and the statement's `extra` ones."""
        assert self.rows.head is not None  # the caller's row: `admit` has checked it
        return self.rows.head


def listing(query: Q, read: ListRead) -> Read[Listing[Q]]:
    """A list route's read: `read`'s page (a `ListRead`, built from the parsed `query`)."""
    return Read(read.statement, read.params, shape=lambda rows: Listing(query, read, rows))


def my_sites(rows: Folded) -> list[Membership]:
    """The sites of a `MY_SITES` read."""
    return [Membership._make(row[CALLER_WIDTH:]) for row in rows]


# --- the order of checks ---------------------------------------------------------------------------


def admit(
    needs: Needs, token: TokenContext, found: Rights | None, *, invalid: ApiError | None = None
) -> Principal:
    """The caller held to what the route `needs`, in API.md's order: 401 (an unknown or inactive
    account), 403 (no usable site for a site route, a role that may not write, a member of the
    path's site who is not its admin, a caller who is not a platform admin), 400 (`invalid`: the
    request's parameters or body, refused while the read was built), 404 (not an active member of
    the path's site, or no such site)."""
    if found is None or not found.active:
        raise AuthenticationFailed(INVALID_TOKEN)
    role = found.role
    if isinstance(needs, SiteRole) and needs.at == "token":
        if role is None:
            raise SiteContextRequired()
        if needs.write and role not in WRITE_ROLES:
            raise Forbidden("Your role on this site does not allow changes")
    if isinstance(needs, SiteAdmin) and role is not None and role != "admin":
        raise Forbidden(needs.message)
    if isinstance(needs, PlatformAdmin) and not found.platform_admin:
        raise Forbidden("Only platform admins may do this")
    if invalid is not None:
        raise invalid
    if at_path(needs) and role is None:
        raise NotFound(SITE_NOT_FOUND)
    return Principal(
        user_id=token.user_id,
        session_id=token.session_id,
        expires_at=token.expires_at,
        issued_at=token.issued_at,
        auth_time_ms=token.auth_time_ms,
        username=found.username,
        email=found.email,
        last_login=found.last_login,
        platform_admin=found.platform_admin,
        site=found.site,
    )
