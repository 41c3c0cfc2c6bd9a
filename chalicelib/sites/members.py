"""A site's members: the users list, and its administration by the site's admins (add an account or
create a pending one, setup tokens, roles, removal) and by the operator (the command line and the
demo data). Each change is one statement after the rights-and-lock statement
(`chalicelib.sites.service.LOCKED`; see that module for how the last active admin is kept).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    String,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.audit import events as audit
from chalicelib.config import get_settings
from chalicelib.errors import Conflict, Forbidden, NotFound, ValidationFailed
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
from chalicelib.kit.secret import new_secret
from chalicelib.kit.timestamps import isoformat
from chalicelib.kit.usernames import same_name
from chalicelib.models import SetupToken, SiteMembership, User
from chalicelib.sites.service import is_admin, one_row, role_change, still_admin

MEMBER_NOT_FOUND = "No such member of this site"
IN_USE = "username or e-mail already in use"

_PENDING = User.password_hash.is_(None)
_MEMBERS = (
    select(
        User.id,
        User.username,
        User.email,
        SiteMembership.role,
        User.last_login,
        User.is_active,
        _PENDING.label("pending"),
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
    callers.fold(
        (_MEMBERS.where(_AFTER) if keyset else _MEMBERS.offset(bindparam("offset")))
        .order_by(*_by_username(User))
        .limit(bindparam("limit")),
        when=callers.ADMIN,
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
        "pending": row.pending,
    }


def members(session: Session, *, site_id: int, query: Pagination, read: ListRead, rows: list[Any]) -> Page:
    """A page of the users list and its meta (a total past the page counted up to COUNT_CAP)."""
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
    """The site's active, non-pending admins other than `user_id`."""
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
            u.c.password_hash.is_not(None),
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
            _PENDING.label("pending"),
            User.created_by_site_id,
            SiteMembership.role,
        )
        .join(SiteMembership, SiteMembership.user_id == User.id)
        .where(SiteMembership.site_id == site_id, SiteMembership.user_id == user_id)
        .cte("target")
    )


def _expiry() -> Any:
    return func.now() + literal(timedelta(seconds=get_settings().setup_token_ttl_seconds), Interval)


def _replacing_the_earlier(stmt: Any) -> Any:
    """A setup token's INSERT that replaces the account's earlier token (one per account), which
    then stops working."""
    return stmt.on_conflict_do_update(
        index_elements=[SetupToken.user_id],
        set_={
            "token_hash": stmt.excluded.token_hash,
            "expires_at": stmt.excluded.expires_at,
            "created_at": func.now(),
        },
    )


# --- administration: the changes -----------------------------------------------------------------


def _account_for(site_id: int, username: str, email: str, admin: Any) -> Any:
    """The account `add_member` adds: an existing, non-pending one whose username and e-mail are
    both its own and that is not yet a member, or (neither name nor e-mail taken, the caller an
    admin) a pending one created here. At most one row; none for every 409 case."""
    by_name = (
        select(User.id, _PENDING.label("pending")).where(same_name(User.username, username)).cte("by_name")
    )
    by_email = (
        select(User.id).where(func.lower(User.email) == func.lower(literal(email, String))).cte("by_email")
    )
    existing = (
        select(
            User.id,
            User.username,
            User.email,
            User.last_login,
            User.is_active,
            false().label("pending"),
            false().label("created"),
        )
        .join(by_name, by_name.c.id == User.id)
        .join(by_email, by_email.c.id == User.id)
        .where(
            ~by_name.c.pending,
            ~exists().where(SiteMembership.user_id == User.id, SiteMembership.site_id == site_id),
        )
    )
    fresh = (
        pg_insert(User)
        .from_select(
            ["username", "email", "created_by_site_id"],
            select(literal(username, String), literal(email, String), literal(site_id)).where(
                admin, ~exists(select(by_name.c.id)), ~exists(select(by_email.c.id))
            ),
        )
        .on_conflict_do_nothing()
        .returning(
            User.id,
            User.username,
            User.email,
            User.last_login,
            User.is_active,
            true().label("pending"),
            true().label("created"),
        )
        .cte("fresh")
    )
    return fresh, union_all(existing, select(*fresh.c)).cte("chosen")


def _member_added_events(
    *, site_id: int, origin: audit.Origin, username: str, email: str, fresh: Any, issued: Any, added: Any
) -> Any:
    """user.created and user.setup_token_issued for a pending account made here, membership.added."""
    return audit.as_cte(
        audit.insert_all(
            audit.rows(
                fresh,
                origin=origin,
                action="user.created",
                target_type="user",
                target_id=fresh.c.id,
                site_id=site_id,
                changes=audit.created({"username": username, "email": email}, audit.ACCOUNT_FIELDS),
            ),
            audit.rows(
                issued,
                origin=origin,
                action="user.setup_token_issued",
                target_type="user",
                target_id=issued.c.user_id,
                site_id=site_id,
            ),
            audit.rows(
                added,
                origin=origin,
                action="membership.added",
                target_type="user",
                target_id=added.c.user_id,
                site_id=site_id,
                changes=role_change(None, added.c.role),
            ),
        ),
        "events",
    )


def add_member(
    session: Session,
    *,
    site_id: int,
    caller_id: int,
    origin: audit.Origin,
    username: str,
    email: str,
    role: str,
) -> dict[str, Any]:
    """An existing, non-pending account whose username and e-mail are both its own becomes a member;
    when neither is taken, a pending account is created with a setup token. Anything else is one
    409. One statement, with the events (user.created, user.setup_token_issued, membership.added)."""
    token, digest = new_secret()
    admin = is_admin(site_id, caller_id)
    fresh, chosen = _account_for(site_id, username, email, admin)
    added = (
        pg_insert(SiteMembership)
        .from_select(
            ["user_id", "site_id", "role"],
            select(chosen.c.id, literal(site_id), literal(role, String)).where(admin),
        )
        .on_conflict_do_nothing()
        .returning(SiteMembership.user_id, SiteMembership.role)
        .cte("added")
    )
    issued = (
        insert(SetupToken)
        .from_select(
            ["user_id", "token_hash", "expires_at"], select(fresh.c.id, literal(digest, String), _expiry())
        )
        .returning(SetupToken.user_id, SetupToken.expires_at)
        .cte("issued")
    )
    events = _member_added_events(
        site_id=site_id,
        origin=origin,
        username=username,
        email=email,
        fresh=fresh,
        issued=issued,
        added=added,
    )
    one = one_row()
    stmt = (
        select(admin.label("caller_admin"), *chosen.c, added.c.role, issued.c.expires_at)
        .select_from(
            one.outerjoin(chosen, true())
            .outerjoin(added, added.c.user_id == chosen.c.id)
            .outerjoin(issued, issued.c.user_id == chosen.c.id)
        )
        .add_cte(events)
    )
    row = session.execute(stmt).one()
    still_admin(row)
    if row.role is None:
        raise Conflict(IN_USE)
    answer: dict[str, Any] = {"user": member(row), "created": row.created}
    if row.created:
        answer.update(setup_token=token, setup_expires_at=isoformat(row.expires_at))
    return answer


def issue_setup_token(
    session: Session, *, site_id: int, caller_id: int, origin: audit.Origin, user_id: int
) -> dict[str, Any]:
    """A new setup token for a pending account this site created; the earlier one stops working."""
    token, digest = new_secret()
    admin = is_admin(site_id, caller_id)
    target = _target(site_id, user_id)
    stmt = pg_insert(SetupToken).from_select(
        ["user_id", "token_hash", "expires_at"],
        select(target.c.id, literal(digest, String), _expiry()).where(
            admin, target.c.pending, target.c.created_by_site_id == site_id
        ),
    )
    issued = _replacing_the_earlier(stmt).returning(SetupToken.user_id, SetupToken.expires_at).cte("issued")
    sites, site_column = audit.account_sites(issued, issued.c.user_id)
    event = audit.as_cte(
        audit.record(
            sites,
            origin=origin,
            action="user.setup_token_issued",
            target_type="user",
            target_id=issued.c.user_id,
            site_id=site_column,
        ),
        "token_issued",
    )
    one = one_row()
    row = session.execute(
        select(admin.label("caller_admin"), *target.c, issued.c.expires_at)
        .select_from(one.outerjoin(target, true()).outerjoin(issued, true()))
        .add_cte(event)
    ).one()
    still_admin(row)
    if row.id is None:
        raise NotFound(MEMBER_NOT_FOUND)
    if not row.pending:
        raise Conflict("The account already has a password: it needs no setup token")
    if row.created_by_site_id != site_id:
        raise Forbidden("Only the admins of the site that created the account may issue its setup tokens")
    return {"setup_token": token, "setup_expires_at": isoformat(row.expires_at)}


def change_role(
    session: Session, *, site_id: int, caller_id: int, origin: audit.Origin, user_id: int, role: str
) -> dict[str, Any]:
    """Set a member's role; the same role changes (and records) nothing; demoting the last active,
    non-pending admin is a 409."""
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
    event = audit.as_cte(
        audit.record(
            source,
            origin=origin,
            action="membership.role_changed",
            target_type="user",
            target_id=changed.c.user_id,
            site_id=site_id,
            changes=role_change(target.c.role, changed.c.role),
        ),
        "role_changed",
    )
    one = one_row()
    row = session.execute(
        select(admin.label("caller_admin"), *target.c, changed.c.role.label("new_role"))
        .select_from(one.outerjoin(target, true()).outerjoin(changed, true()))
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
    """End a membership (not the last active, non-pending admin's: 409). A pending account that
    loses its only membership is deleted, with its setup token."""
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
    gone = (
        delete(User)
        .where(
            User.id.in_(select(removed.c.user_id)),
            _PENDING,
            ~exists().where(SiteMembership.user_id == User.id, SiteMembership.site_id != site_id),
        )
        .returning(User.id, User.username, User.email)
        .cte("gone")
    )
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
            # The account's only site is the one it is removed from: its admins see the deletion.
            audit.rows(
                gone,
                origin=origin,
                action="user.deleted",
                target_type="user",
                target_id=gone.c.id,
                site_id=site_id,
                changes=func.jsonb_build_object(
                    "username",
                    func.jsonb_build_object("from", gone.c.username, "to", None),
                    "email",
                    func.jsonb_build_object("from", gone.c.email, "to", None),
                ),
            ),
        ),
        "events",
    )
    one = one_row()
    row = session.execute(
        select(admin.label("caller_admin"), target.c.id, removed.c.user_id.label("removed_id"))
        .select_from(one.outerjoin(target, true()).outerjoin(removed, true()))
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
    that role."""
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
    return True


def replace_setup_token(session: Session, *, user_id: int, origin: audit.Origin) -> str:
    """A new setup token for the pending account `user_id` (the earlier one stops working), recorded."""
    token, digest = new_secret()
    stmt = pg_insert(SetupToken).values(user_id=user_id, token_hash=digest, expires_at=_expiry())
    session.execute(_replacing_the_earlier(stmt))
    session.execute(audit.account_event(user_id, origin=origin, action="user.setup_token_issued"))
    return token
