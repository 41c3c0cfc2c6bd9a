"""A site's members: the users list, and its administration by the site's admins (roles, removal;
members join by invitation: chalicelib.sites.invitations) and by the operator (the command line and
the demo data). Each change is one statement after the rights-and-lock statement
(`chalicelib.sites.service.LOCKED`; see that module for how the last active admin is kept). An admin
who stops being one (demoted, removed) loses their pending invitations at the site in the same
statement: they are revoked and recorded.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import String, bindparam, delete, func, literal, or_, select, true, tuple_, update
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.audit import events as audit
from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.kit.pagination import (
    BAD_CURSOR,
    COUNT_CAP,
    ListRead,
    Page,
    Pagination,
    capped,
    open_cursor,
    settle,
)
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import SiteMembership, User
from chalicelib.sites import invitations
from chalicelib.sites.service import is_admin, one_row, role_change, still_admin

MEMBER_NOT_FOUND = "No such member of this site"

_MEMBERS = (
    select(
        User.id,
        User.username,
        User.email,
        SiteMembership.role,
        User.last_login,
        User.is_active,
    )
    .join(SiteMembership, SiteMembership.user_id == User.id)
    .where(SiteMembership.site_id == bindparam("site_id"))
)
_AFTER = tuple_(func.lower(User.username).collate("C"), User.id) > tuple_(
    func.lower(bindparam("after_key", type_=String)).collate("C"), bindparam("after_id")
)


def _by_username(columns: Any) -> list[Any]:
    return [func.lower(columns.username).collate("C"), columns.id]


# A page of a site's members for its admins, by username (case-insensitively, then id), folded with
# the rights: one round trip. By number, or after a cursor (the last member's username and id).
MEMBERS_PAGE, MEMBERS_AFTER = (
    access.fold(
        (_MEMBERS.where(_AFTER) if keyset else _MEMBERS.offset(bindparam("offset")))
        .order_by(*_by_username(User))
        .limit(bindparam("limit")),
        when=access.ADMIN,
        order_by=_by_username,
    )
    for keyset in (False, True)
)
_MEMBERS_COUNT = select(func.count()).select_from(
    select(SiteMembership.user_id)
    .where(SiteMembership.site_id == bindparam("site_id"))
    .limit(COUNT_CAP + 1)
    .subquery()
)


def members_read(query: Pagination, *, site_id: int | None) -> ListRead:
    """The first statement of the users list at the path's site; a cursor of another list is a 400."""
    binding = json.dumps(["users", site_id])
    position = open_cursor(query, binding)
    if position is None:
        params = {"offset": query.offset, "limit": query.limit}
        return ListRead(MEMBERS_PAGE, params, None, binding)
    if not isinstance(position.key, str):
        raise ValidationFailed(
            "Invalid query parameters", details=[{"field": "cursor", "message": BAD_CURSOR}]
        )
    after = {"after_key": position.key, "after_id": position.id, "limit": query.limit}
    return ListRead(MEMBERS_AFTER, after, position, binding)


def member(row: Any, role: str | None = None) -> dict[str, Any]:
    """A member as the users list shows it, from any row with the member's columns."""
    return {
        "id": row.id,
        "username": row.username,
        "email": row.email,
        "role": role or row.role,
        "last_login": isoformat(row.last_login),
        "is_active": row.is_active,
    }


def members(session: Session, *, site_id: int, listing: access.Listing[Any]) -> Page:
    """A page of the users list and its meta (a total past the page counted up to COUNT_CAP)."""
    query, read, rows = listing.query, listing.read, listing.rows
    found = settle(
        query,
        rows,
        position=read.position,
        count=lambda: capped(session.scalar(_MEMBERS_COUNT, {"site_id": site_id})),
        binding=read.binding,
        key=lambda row: row.username,
    )
    return replace(found, items=[member(row) for row in found.items])


# --- administration: the pieces ------------------------------------------------------------------


# The helpers below read their own copies of the tables: a subquery naming the table an UPDATE or
# DELETE changes would otherwise be correlated with the row being changed.
def _other_admins(site_id: int, user_id: int) -> Any:
    """The site's active admins other than `user_id`."""
    m, u = SiteMembership.__table__.alias("m"), User.__table__.alias("u")
    return (
        select(func.count())
        .select_from(m)
        .join(u, u.c.id == m.c.user_id)
        .where(
            m.c.site_id == site_id,
            m.c.role == "admin",
            m.c.user_id != user_id,
            u.c.is_active,
        )
        .scalar_subquery()
    )


def _target(site_id: int, user_id: int) -> Any:
    """The member `user_id` of the site (nothing for a non-member: other sites' accounts stay unseen)."""
    return (
        select(
            User.id,
            User.username,
            User.email,
            User.last_login,
            User.is_active,
            SiteMembership.role,
        )
        .join(SiteMembership, SiteMembership.user_id == User.id)
        .where(SiteMembership.site_id == site_id, SiteMembership.user_id == user_id)
        .cte("target")
    )


def _revoking_invitations_of(member: Any, site_id: int, origin: audit.Origin) -> tuple[Any, Any]:
    """The pending invitations at the site made by the member of the CTE `member` (a demoted or
    removed admin: they stop being one), revoked: (the revoked CTE, its events' rows)."""
    revoked = invitations.revoking(
        invitations.by_inviter(select(member.c.user_id).scalar_subquery(), site_id), "invitations_revoked"
    )
    return revoked, invitations.revoked_events(revoked, origin=origin)


def change_role(
    session: Session, *, site_id: int, caller_id: int, origin: audit.Origin, user_id: int, role: str
) -> dict[str, Any]:
    """Set a member's role; the same role changes (and records) nothing; demoting the last active
    admin is a 409. A demoted admin's pending invitations at the site are revoked."""
    admin = is_admin(site_id, caller_id)
    target = _target(site_id, user_id)
    changed = (
        update(SiteMembership)
        .where(
            SiteMembership.site_id == site_id,
            SiteMembership.user_id == user_id,
            SiteMembership.role != role,
            admin,
            or_(literal(role, String) == "admin", _other_admins(site_id, user_id) > 0),
        )
        .values(role=role)
        .returning(SiteMembership.user_id, SiteMembership.role)
        .cte("changed")
    )
    source = changed.join(target, target.c.id == changed.c.user_id)
    demoted = select(changed.c.user_id).where(changed.c.role != "admin").cte("demoted")
    revoked, revoked_rows = _revoking_invitations_of(demoted, site_id, origin)
    event = audit.as_cte(
        audit.insert_all(
            audit.rows(
                source,
                origin=origin,
                action="membership.role_changed",
                target_type="user",
                target_id=changed.c.user_id,
                site_id=site_id,
                changes=role_change(target.c.role, changed.c.role),
            ),
            revoked_rows,
        ),
        "role_changed",
    )
    one = one_row()
    row = session.execute(
        select(admin.label("caller_admin"), *target.c, changed.c.role.label("new_role"))
        .select_from(one.outerjoin(target, true()).outerjoin(changed, true()))
        .add_cte(invitations.dropping(revoked))
        .add_cte(event)
    ).one()
    still_admin(row)
    if row.id is None:
        raise NotFound(MEMBER_NOT_FOUND)
    if row.role != role and row.new_role is None:
        raise Conflict("The site would have no active admin left: make someone else admin first")
    return member(row, role)


def remove_member(
    session: Session, *, site_id: int, caller_id: int, origin: audit.Origin, user_id: int
) -> None:
    """End a membership (not the last active admin's: 409); the account stays. A removed admin's
    pending invitations at the site are revoked."""
    admin = is_admin(site_id, caller_id)
    target = _target(site_id, user_id)
    removed = (
        delete(SiteMembership)
        .where(
            SiteMembership.site_id == site_id,
            SiteMembership.user_id == user_id,
            admin,
            or_(SiteMembership.role != "admin", _other_admins(site_id, user_id) > 0),
        )
        .returning(SiteMembership.user_id, SiteMembership.role)
        .cte("removed")
    )
    revoked, revoked_rows = _revoking_invitations_of(removed, site_id, origin)
    events = audit.as_cte(
        audit.insert_all(
            audit.rows(
                removed,
                origin=origin,
                action="membership.removed",
                target_type="user",
                target_id=removed.c.user_id,
                site_id=site_id,
                changes=role_change(removed.c.role, None),
            ),
            revoked_rows,
        ),
        "events",
    )
    one = one_row()
    row = session.execute(
        select(admin.label("caller_admin"), target.c.id, removed.c.user_id.label("removed_id"))
        .select_from(one.outerjoin(target, true()).outerjoin(removed, true()))
        .add_cte(invitations.dropping(revoked))
        .add_cte(events)
    ).one()
    still_admin(row)
    if row.id is None:
        raise NotFound(MEMBER_NOT_FOUND)
    if row.removed_id is None:
        raise Conflict("The site would have no active admin left: make someone else admin first")


# --- the operator's changes (the command line and the demo data; not held to the last-admin rule) ---


def grant(session: Session, *, user_id: int, site_id: int, role: str, origin: audit.Origin) -> bool:
    """Create or change a membership and record it; False (nothing recorded) when it already had
    that role. The site's pending invitations for the account's address are revoked (it joined
    another way), and so are its own invitations at the site when it stops being an admin."""
    membership = session.get(SiteMembership, (user_id, site_id))
    if membership is not None and membership.role == role:
        return False
    if membership is None:
        session.add(SiteMembership(user_id=user_id, site_id=site_id, role=role))
        action, before = "membership.added", None
    else:
        action, before, membership.role = "membership.role_changed", membership.role, role
    session.flush()
    session.execute(
        audit.record(
            None,
            origin=origin,
            action=action,
            target_type="user",
            target_id=user_id,
            site_id=site_id,
            changes=audit.diff({"role": before}, {"role": role}),
        )
    )
    invitations.revoke_where(session, invitations.for_account(user_id, site_id), origin=origin)
    if before == "admin":
        invitations.revoke_where(session, invitations.by_inviter(user_id, site_id), origin=origin)
    return True
