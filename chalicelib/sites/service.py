"""Site queries. Only active sites the caller is a member of are ever visible."""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.kit.pagination import Pagination, page_total
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import Site, SiteInteractionCount, SiteMembership, User

# A site's interaction count, kept exact by triggers (migration 0004) in the site's own counter row.
INTERACTION_COUNT = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id"))
MEMBER_COUNT = select(func.count()).select_from(SiteMembership).where(SiteMembership.site_id == bindparam("site_id"))


def list_for_user(session: Session, *, user_id: int) -> list[dict[str, Any]]:
    """The user's active sites, by name, each with the user's role."""
    return callers.sites_of(session, user_id=user_id)


def detail(session: Session, *, user_id: int, site_id: int) -> dict[str, Any] | None:
    """The site with the caller's role and its counts, or None when the caller may not see it.
    `user_count` counts every member (inactive accounts included), like the users list."""
    row = session.execute(callers.memberships().where(
        SiteMembership.user_id == user_id, Site.id == site_id)).first()
    if row is None:
        return None
    params = {"site_id": site_id}
    return {"id": row.id, "name": row.name, "description": row.description,
            "created_at": isoformat(row.created_at), "role": row.role,
            "user_count": session.scalar(MEMBER_COUNT, params) or 0,
            "interaction_count": session.scalar(INTERACTION_COUNT, params) or 0}


def list_users(session: Session, *, site_id: int, query: Pagination) -> tuple[list[dict[str, Any]], int]:
    """One page of the site's members, by username (case-insensitively, then id), and the total."""
    members = (
        select(User.id, User.username, User.email, SiteMembership.role, User.last_login, User.is_active)
        .join(SiteMembership, SiteMembership.user_id == User.id)
        .where(SiteMembership.site_id == site_id)
    )
    rows = session.execute(members.order_by(func.lower(User.username).collate("C"), User.id)
                           .offset(query.offset).limit(query.per_page)).all()
    total = page_total(query, len(rows), lambda: session.scalar(MEMBER_COUNT, {"site_id": site_id}) or 0)
    return [{"id": r.id, "username": r.username, "email": r.email, "role": r.role,
             "last_login": isoformat(r.last_login), "is_active": r.is_active} for r in rows], total
