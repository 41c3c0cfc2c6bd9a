"""Site queries. Only active sites the caller is a member of are ever visible."""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.kit.pagination import Pagination, page_total
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import SiteInteractionCount, SiteMembership, User

# A site's interaction count, kept exact by triggers (migration 0004) in the site's own counter row.
INTERACTION_COUNT = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id"))
MEMBER_COUNT = select(func.count()).select_from(SiteMembership).where(SiteMembership.site_id == bindparam("site_id"))


# One site with the caller's role and its counts, at the path's site (chalicelib.caller.fold).
DETAIL = callers.fold(extra=(MEMBER_COUNT.scalar_subquery().label("user_count"),
                             INTERACTION_COUNT.scalar_subquery().label("interaction_count")))

_MEMBERS = (
    select(User.id, User.username, User.email, SiteMembership.role, User.last_login, User.is_active,
           func.count().over().label("total"))
    .join(SiteMembership, SiteMembership.user_id == User.id)
    .where(SiteMembership.site_id == bindparam("site_id"))
)


def _by_username(columns: Any) -> list[Any]:
    return [func.lower(columns.username).collate("C"), columns.id]


# A page of a site's members for its admins, by username (case-insensitively, then id), with the
# total, folded with the rights: one round trip.
MEMBERS_PAGE = callers.fold(_MEMBERS.order_by(*_by_username(User)).offset(bindparam("offset")).limit(
    bindparam("limit")), when=callers.ADMIN, order_by=_by_username)


def summaries(rows: list[Any]) -> list[dict[str, Any]]:
    return [callers.site_summary(row) for row in rows]


def detail(caller: callers.Caller) -> dict[str, Any] | None:
    """The site with the caller's role and its counts, from a `DETAIL` row; None when the caller
    may not see it. `user_count` counts every member (inactive accounts included), like the users list."""
    row = caller.row
    if row.caller_role is None:
        return None
    return {"id": row.site_id_, "name": row.site_name, "description": row.site_description,
            "created_at": isoformat(row.site_created_at), "role": row.caller_role,
            "user_count": row.user_count or 0, "interaction_count": row.interaction_count or 0}


def members_params(query: Pagination) -> dict[str, Any]:
    return {"offset": query.offset, "limit": query.per_page}


def members(session: Session, *, site_id: int, query: Pagination, rows: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """A page of `MEMBERS_PAGE` and the total (counted again only past the last page)."""
    total = page_total(query, len(rows), lambda: rows[0].total if rows else
                       session.scalar(MEMBER_COUNT, {"site_id": site_id}) or 0)
    return [{"id": r.id, "username": r.username, "email": r.email, "role": r.role,
             "last_login": isoformat(r.last_login), "is_active": r.is_active} for r in rows], total
