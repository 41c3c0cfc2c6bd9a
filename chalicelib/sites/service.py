"""Sites and their members. Only active sites the caller is a member of are ever visible.

Administration (a site's admins: members, roles, setup tokens, the site's settings; platform admins:
new sites) is two statements and a COMMIT. The first is the caller's rights at the path's site,
which also locks the site's row (`FOR NO KEY UPDATE`, taken only for its admins) so that changes to
one site's members run one after another. The second makes the change and records its events (a
data-modifying WITH); it reads the memberships afresh, after the lock, and checks again that the
caller is still an admin — so two admins demoting each other at once leave one: the second finds it
is no longer an admin (403), and nobody may remove or demote the last active, non-pending admin
(409).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    String,
    Text,
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
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.audit import events as audit
from chalicelib.config import get_settings
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.kit.pagination import Pagination, page_total
from chalicelib.kit.secret import new_secret
from chalicelib.kit.timestamps import isoformat
from chalicelib.kit.usernames import same_name
from chalicelib.models import SetupToken, Site, SiteInteractionCount, SiteMembership, User

SITE_NOT_FOUND = "Site not found"
MEMBER_NOT_FOUND = "No such member of this site"
IN_USE = "username or e-mail already in use"
NO_LONGER_ADMIN = "You are no longer an admin of this site"

# A site's interaction count, kept exact by triggers (migration 0004) in the site's own counter row.
INTERACTION_COUNT = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id")
)
MEMBER_COUNT = (
    select(func.count()).select_from(SiteMembership).where(SiteMembership.site_id == bindparam("site_id"))
)
_COUNTS = (
    MEMBER_COUNT.scalar_subquery().label("user_count"),
    INTERACTION_COUNT.scalar_subquery().label("interaction_count"),
)

# One site with the caller's role and its counts, at the path's site (chalicelib.caller.fold).
DETAIL = callers.fold(extra=_COUNTS)

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
        func.count().over().label("total"),
    )
    .join(SiteMembership, SiteMembership.user_id == User.id)
    .where(SiteMembership.site_id == bindparam("site_id"))
)


def _by_username(columns: Any) -> list[Any]:
    return [func.lower(columns.username).collate("C"), columns.id]


# A page of a site's members for its admins, by username (case-insensitively, then id), with the
# total, folded with the rights: one round trip.
MEMBERS_PAGE = callers.fold(
    _MEMBERS.order_by(*_by_username(User)).offset(bindparam("offset")).limit(bindparam("limit")),
    when=callers.ADMIN,
    order_by=_by_username,
)

# The first statement of every change at /api/sites/{id}/...: the caller's rights there and, for
# its admins, the site's row locked (and read as it is once the lock is held), with its counts.
LOCKED = callers.fold(
    select(
        Site.id.label("locked_id"),
        Site.name.label("locked_name"),
        Site.description.label("locked_description"),
        Site.created_at.label("locked_created_at"),
    )
    .where(Site.id == bindparam("site_id"))
    .with_for_update(key_share=True),
    when=callers.ADMIN,
    extra=_COUNTS,
)


def summaries(rows: list[Any]) -> list[dict[str, Any]]:
    return [callers.site_summary(row) for row in rows]


def detail(caller: callers.Caller) -> dict[str, Any] | None:
    """The site with the caller's role and its counts, from a `DETAIL` row; None when the caller
    may not see it. `user_count` counts every member (inactive and pending accounts included), like
    the users list."""
    row = caller.row
    if row.caller_role is None:
        return None
    return {
        "id": row.site_id_,
        "name": row.site_name,
        "description": row.site_description,
        "created_at": isoformat(row.site_created_at),
        "role": row.caller_role,
        "user_count": row.user_count or 0,
        "interaction_count": row.interaction_count or 0,
    }


def members_params(query: Pagination) -> dict[str, Any]:
    return {"offset": query.offset, "limit": query.per_page}


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


def members(
    session: Session, *, site_id: int, query: Pagination, rows: list[Any]
) -> tuple[list[dict[str, Any]], int]:
    """A page of `MEMBERS_PAGE` and the total (counted again only past the last page)."""
    total = page_total(
        query,
        len(rows),
        lambda: rows[0].total if rows else session.scalar(MEMBER_COUNT, {"site_id": site_id}) or 0,
    )
    return [member(r) for r in rows], total


# --- administration: the pieces ------------------------------------------------------------------


def _one() -> Any:
    return select(literal(1).label("one")).subquery("one")


# The helpers below read their own copies of the tables: a subquery naming the table an UPDATE or
# DELETE changes would otherwise be correlated with the row being changed.
def _is_admin(site_id: int, user_id: int) -> Any:
    """Whether `user_id` is, as this statement sees it, an active admin of the active site."""
    m, s, u = SiteMembership.__table__.alias("m"), Site.__table__.alias("s"), User.__table__.alias("u")
    return exists().where(
        m.c.site_id == site_id,
        m.c.user_id == user_id,
        m.c.role == "admin",
        s.c.id == m.c.site_id,
        s.c.is_active,
        u.c.id == m.c.user_id,
        u.c.is_active,
    )


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


def _role_change(old: Any, new: Any) -> Any:
    return func.jsonb_build_object("role", func.jsonb_build_object("from", old, "to", new))


def _still_admin(row: Any) -> None:
    if not row.caller_admin:
        raise Forbidden(NO_LONGER_ADMIN)


# --- administration: the changes -----------------------------------------------------------------


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
    admin = _is_admin(site_id, caller_id)
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
    chosen = union_all(existing, select(*fresh.c)).cte("chosen")
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
    events = audit.as_cte(
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
                changes=_role_change(None, added.c.role),
            ),
        ),
        "events",
    )
    one = _one()
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
    _still_admin(row)
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
    admin = _is_admin(site_id, caller_id)
    target = _target(site_id, user_id)
    stmt = pg_insert(SetupToken).from_select(
        ["user_id", "token_hash", "expires_at"],
        select(target.c.id, literal(digest, String), _expiry()).where(
            admin, target.c.pending, target.c.created_by_site_id == site_id
        ),
    )
    issued = (
        stmt.on_conflict_do_update(
            index_elements=[SetupToken.user_id],
            set_={
                "token_hash": stmt.excluded.token_hash,
                "expires_at": stmt.excluded.expires_at,
                "created_at": func.now(),
            },
        )
        .returning(SetupToken.user_id, SetupToken.expires_at)
        .cte("issued")
    )
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
    one = _one()
    row = session.execute(
        select(admin.label("caller_admin"), *target.c, issued.c.expires_at)
        .select_from(one.outerjoin(target, true()).outerjoin(issued, true()))
        .add_cte(event)
    ).one()
    _still_admin(row)
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
    admin = _is_admin(site_id, caller_id)
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
            changes=_role_change(target.c.role, changed.c.role),
        ),
        "role_changed",
    )
    one = _one()
    row = session.execute(
        select(admin.label("caller_admin"), *target.c, changed.c.role.label("new_role"))
        .select_from(one.outerjoin(target, true()).outerjoin(changed, true()))
        .add_cte(event)
    ).one()
    _still_admin(row)
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
    admin = _is_admin(site_id, caller_id)
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
                changes=_role_change(removed.c.role, None),
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
    one = _one()
    row = session.execute(
        select(admin.label("caller_admin"), target.c.id, removed.c.user_id.label("removed_id"))
        .select_from(one.outerjoin(target, true()).outerjoin(removed, true()))
        .add_cte(events)
    ).one()
    _still_admin(row)
    if row.id is None:
        raise NotFound(MEMBER_NOT_FOUND)
    if row.removed_id is None:
        raise Conflict("The site would have no active admin left: make someone else admin first")


def _site_detail(
    *, id: int, name: str, description: str | None, created_at: Any, user_count: int, interaction_count: int
) -> dict[str, Any]:
    """A site as its admin sees it (the caller of these changes is always its admin)."""
    return {
        "id": id,
        "name": name,
        "description": description,
        "created_at": isoformat(created_at),
        "role": "admin",
        "user_count": user_count,
        "interaction_count": interaction_count,
    }


NAME_TAKEN = "A site with this name already exists (names are unique case-insensitively)"


def update_site(
    session: Session, *, site_id: int, caller_id: int, origin: audit.Origin, locked: Any, sent: dict[str, Any]
) -> dict[str, Any]:
    """Apply the fields sent to the site (`locked`: its row as `LOCKED` read it, under the lock); a
    body that changes nothing writes and records nothing. A name another site has is a 409."""
    before = {"name": locked.locked_name, "description": locked.locked_description}
    changes = {name: value for name, value in sent.items() if before[name] != value}
    counts = {"user_count": locked.user_count or 0, "interaction_count": locked.interaction_count or 0}
    if not changes:
        return _site_detail(
            id=locked.locked_id,
            created_at=locked.locked_created_at,
            name=before["name"],
            description=before["description"],
            **counts,
        )
    admin = _is_admin(site_id, caller_id)
    changed = (
        update(Site)
        .where(Site.id == site_id, admin)
        .values(**changes)
        .returning(Site.id, Site.name, Site.description, Site.created_at)
        .cte("changed")
    )
    event = audit.as_cte(
        audit.record(
            changed,
            origin=origin,
            action="site.updated",
            target_type="site",
            target_id=changed.c.id,
            site_id=changed.c.id,
            changes=audit.diff(before, changes),
        ),
        "site_updated",
    )
    one = _one()
    try:
        row = session.execute(
            select(admin.label("caller_admin"), *changed.c)
            .select_from(one.outerjoin(changed, true()))
            .add_cte(event)
        ).one()
    except IntegrityError:  # another site has the name (case-insensitively)
        raise Conflict(NAME_TAKEN) from None
    _still_admin(row)
    return _site_detail(
        id=row.id, name=row.name, description=row.description, created_at=row.created_at, **counts
    )


def create_site(
    session: Session, *, caller_id: int, origin: audit.Origin, name: str, description: str | None
) -> dict[str, Any]:
    """A new site whose admin is the caller (a platform admin, checked again here); a name taken
    (case-insensitively) is a 409. One statement, with site.created and membership.added."""
    allowed = exists().where(User.id == caller_id, User.platform_admin, User.is_active)
    new = (
        pg_insert(Site)
        .from_select(
            ["name", "description"], select(literal(name, String), literal(description, Text)).where(allowed)
        )
        .on_conflict_do_nothing()
        .returning(Site.id, Site.name, Site.description, Site.created_at)
        .cte("new_site")
    )
    added = (
        insert(SiteMembership)
        .from_select(["user_id", "site_id", "role"], select(literal(caller_id), new.c.id, literal("admin")))
        .returning(SiteMembership.user_id, SiteMembership.site_id, SiteMembership.role)
        .cte("added")
    )
    events = audit.as_cte(
        audit.insert_all(
            audit.rows(
                new,
                origin=origin,
                action="site.created",
                target_type="site",
                target_id=new.c.id,
                site_id=new.c.id,
                changes=audit.created({"name": name, "description": description}, audit.SITE_FIELDS),
            ),
            audit.rows(
                added,
                origin=origin,
                action="membership.added",
                target_type="user",
                target_id=added.c.user_id,
                site_id=added.c.site_id,
                changes=_role_change(None, added.c.role),
            ),
        ),
        "events",
    )
    one = _one()
    row = session.execute(
        select(allowed.label("allowed"), *new.c).select_from(one.outerjoin(new, true())).add_cte(events)
    ).one()
    if not row.allowed:
        raise Forbidden("Only platform admins may create sites")
    if row.id is None:  # ON CONFLICT DO NOTHING: the name is taken
        raise Conflict(NAME_TAKEN)
    return _site_detail(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        user_count=1,
        interaction_count=0,
    )


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
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SetupToken.user_id],
            set_={
                "token_hash": stmt.excluded.token_hash,
                "expires_at": stmt.excluded.expires_at,
                "created_at": func.now(),
            },
        )
    )
    session.execute(audit.account_event(user_id, origin=origin, action="user.setup_token_issued"))
    return token
