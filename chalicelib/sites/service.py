"""Site queries. Only active sites the caller is a member of are ever visible."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chalicelib.http import isoformat
from chalicelib.models import Site, SiteMembership, User


def _memberships(user_id: int):
    return (
        select(Site.id, Site.name, Site.description, SiteMembership.role)
        .join(SiteMembership, SiteMembership.site_id == Site.id)
        .where(SiteMembership.user_id == user_id, Site.is_active)
    )


def site_summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "role": row.role}


def list_for_user(session: Session, *, user_id: int) -> list[dict[str, Any]]:
    """The user's active sites, by name, each with the user's role."""
    rows = session.execute(_memberships(user_id).order_by(Site.name, Site.id))
    return [site_summary(row) for row in rows]


def membership(session: Session, *, user_id: int, site_id: int) -> dict[str, Any] | None:
    """The site summary when the user is a member of that active site, else None."""
    row = session.execute(_memberships(user_id).where(Site.id == site_id)).first()
    return site_summary(row) if row else None


def detail(session: Session, *, user_id: int, site_id: int) -> dict[str, Any] | None:
    """The site with the caller's role and its counts, or None when the caller may not see it.
    `user_count` counts every member (inactive accounts included), like the users list."""
    from chalicelib.interactions.service import count_for_site

    row = session.execute(_memberships(user_id).add_columns(Site.created_at).where(Site.id == site_id)).first()
    if row is None:
        return None
    user_count = session.scalar(
        select(func.count()).select_from(SiteMembership).where(SiteMembership.site_id == site_id))
    return {"id": row.id, "name": row.name, "description": row.description,
            "created_at": isoformat(row.created_at), "role": row.role, "user_count": user_count or 0,
            "interaction_count": count_for_site(session, site_id=site_id)}


def list_users(session: Session, *, site_id: int, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the site's members, by username (case-insensitively, then id), and the total."""
    members = (
        select(User.id, User.username, User.email, SiteMembership.role, User.last_login, User.is_active)
        .join(SiteMembership, SiteMembership.user_id == User.id)
        .where(SiteMembership.site_id == site_id)
    )
    offset = (page - 1) * per_page
    rows = session.execute(
        members.order_by(func.lower(User.username).collate("C"), User.id).offset(offset).limit(per_page)).all()
    if (rows and len(rows) < per_page) or (not rows and offset == 0):
        total = offset + len(rows)
    else:
        total = session.scalar(select(func.count()).select_from(SiteMembership)
                               .where(SiteMembership.site_id == site_id)) or 0
    return [{"id": r.id, "username": r.username, "email": r.email, "role": r.role,
             "last_login": isoformat(r.last_login), "is_active": r.is_active} for r in rows], total
