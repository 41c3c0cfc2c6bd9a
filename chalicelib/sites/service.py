"""Sites: the ones a caller may see, one site's detail, and a site's changes (its settings; new
sites). Only active sites the caller is a member of are ever visible. Members and their
administration are in `chalicelib.sites.members`, which builds on the pieces here.

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

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, Text, bindparam, exists, func, insert, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.audit import events as audit
from chalicelib.errors import Conflict, Forbidden
from chalicelib.kit import names
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import Site, SiteInteractionCount, SiteMembership, User

SITE_NOT_FOUND = "Site not found"
NO_LONGER_ADMIN = "You are no longer an admin of this site"

# A site's interaction count, kept exact by triggers (migration 0004) in the site's own counter row.
INTERACTION_COUNT = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id")
)
MEMBER_COUNT = (
    select(func.count()).select_from(SiteMembership).where(SiteMembership.site_id == bindparam("site_id"))
)
COUNTS = (
    MEMBER_COUNT.scalar_subquery().label("user_count"),
    INTERACTION_COUNT.scalar_subquery().label("interaction_count"),
)

# One site with the caller's role and its counts, at the path's site (chalicelib.caller.fold).
DETAIL = access.fold(extra=COUNTS)

# The first statement of every change at /api/sites/{id}/...: the caller's rights there and, for
# its admins, the site's row locked (and read as it is once the lock is held), with its counts.
LOCKED = access.fold(
    select(
        Site.id.label("locked_id"),
        Site.name.label("locked_name"),
        Site.description.label("locked_description"),
        Site.created_at.label("locked_created_at"),
    )
    .where(Site.id == bindparam("site_id"))
    .with_for_update(key_share=True),
    when=access.ADMIN,
    extra=COUNTS,
)


class Counts(NamedTuple):
    """A site's counts, as `COUNTS` reads them. `user_count` counts every member (inactive and
    pending accounts included), like the users list."""

    user_count: int
    interaction_count: int


def counts(rows: access.Folded) -> Counts:
    """The counts of a `DETAIL` or `LOCKED` read (its `extra` columns, after the caller's)."""
    assert rows.head is not None  # the caller's row: `admit` has checked it
    users, interactions = rows.head[access.CALLER_WIDTH : access.CALLER_WIDTH + len(COUNTS)]
    return Counts(users or 0, interactions or 0)


class Locked(NamedTuple):
    """The site's row as `LOCKED` read it, under the lock, with its counts."""

    id: int
    name: str
    description: str | None
    created_at: datetime
    counts: Counts


def locked(rows: access.Folded) -> Locked:
    """The site's row of a `LOCKED` read (`admit` has checked that the caller is its admin)."""
    assert rows, "LOCKED finds the site for its admins"
    site_id, name, description, created_at = rows[0][access.CALLER_WIDTH + len(COUNTS) :]
    return Locked(site_id, name, description, created_at, counts(rows))


def detail(principal: access.Principal, found: Counts) -> dict[str, Any]:
    """The path's site as its member sees it, with its counts (`admit` has checked the membership)."""
    site = principal.site
    assert site is not None
    return _site_detail(
        id=site.id,
        name=site.name,
        description=site.description,
        created_at=site.created_at,
        **found._asdict(),
    ) | {"role": site.role}


# --- the pieces of every change (here and in chalicelib.sites.members) -----------------------------


def one_row() -> Any:
    return select(literal(1).label("one")).subquery("one")


# The helpers below read their own copies of the tables: a subquery naming the table an UPDATE or
# DELETE changes would otherwise be correlated with the row being changed.
def is_admin(site_id: int, user_id: int) -> Any:
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


def role_change(old: Any, new: Any) -> Any:
    return func.jsonb_build_object("role", func.jsonb_build_object("from", old, "to", new))


def still_admin(row: Any) -> None:
    if not row.caller_admin:
        raise Forbidden(NO_LONGER_ADMIN)


# --- a site's changes ------------------------------------------------------------------------------


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


NAME_TAKEN = (
    "A site with this name, or one that looks the same, already exists (names are unique by their "
    "confusable skeleton, case-insensitively)"
)


def update_site(
    session: Session,
    *,
    site_id: int,
    caller_id: int,
    origin: audit.Origin,
    locked: Locked,
    sent: dict[str, Any],
) -> dict[str, Any]:
    """Apply the fields sent to the site (`locked`: its row as `LOCKED` read it, under the lock); a
    body that changes nothing writes and records nothing. A name another site has is a 409."""
    before = {"name": locked.name, "description": locked.description}
    changes = {name: value for name, value in sent.items() if before[name] != value}
    counts = locked.counts._asdict()
    if not changes:
        return _site_detail(
            id=locked.id,
            created_at=locked.created_at,
            name=locked.name,
            description=locked.description,
            **counts,
        )
    admin = is_admin(site_id, caller_id)
    values = {**changes, "name_skeleton": names.skeleton(changes["name"])} if "name" in changes else changes
    changed = (
        update(Site)
        .where(Site.id == site_id, admin)
        .values(**values)
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
    one = one_row()
    try:
        row = session.execute(
            select(admin.label("caller_admin"), *changed.c)
            .select_from(one.outerjoin(changed, true()))
            .add_cte(event)
        ).one()
    except IntegrityError:  # another site has the name (case-insensitively, or by its skeleton)
        raise Conflict(NAME_TAKEN) from None
    still_admin(row)
    return _site_detail(
        id=row.id, name=row.name, description=row.description, created_at=row.created_at, **counts
    )


def create_site(
    session: Session, *, caller_id: int, origin: audit.Origin, name: str, description: str | None
) -> dict[str, Any]:
    """A new site whose admin is the caller (a platform admin, checked again here); a name taken
    (case-insensitively, or by its confusable skeleton) is a 409. One statement, with site.created and
    membership.added."""
    allowed = exists().where(User.id == caller_id, User.platform_admin, User.is_active)
    new = (
        pg_insert(Site)
        .from_select(
            ["name", "description", "name_skeleton"],
            select(
                literal(name, String), literal(description, Text), literal(names.skeleton(name), Text)
            ).where(allowed),
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
                changes=role_change(None, added.c.role),
            ),
        ),
        "events",
    )
    one = one_row()
    row = session.execute(
        select(allowed.label("allowed"), *new.c).select_from(one.outerjoin(new, true())).add_cte(events)
    ).one()
    if not row.allowed:
        raise Forbidden("Only platform admins may create sites")
    if row.id is None:  # ON CONFLICT DO NOTHING: the name (or its skeleton) is taken
        raise Conflict(NAME_TAKEN)
    return _site_detail(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        user_count=1,
        interaction_count=0,
    )
