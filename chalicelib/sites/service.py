"""Site queries. Only active sites the caller is a member of are ever visible."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chalicelib.models import Site, SiteMembership


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
