"""Reading the audit trail: a site's events (its admins), one interaction's history (whoever may read
it). Newest first (by id); every read is scoped to one site, like interactions.

A page is the request's first statement, folded with the caller's rights (one round trip). An
unfiltered site page's total is the site's trigger-kept count (site_audit_counts), read with the
page; a filtered total is counted only when the page does not tell it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, func, select
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.audit.schemas import AuditQuery, HistoryQuery
from chalicelib.kit.pagination import Pagination, page_total
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import AuditEvent, Interaction, SiteAuditCount

_EVENTS = AuditEvent.__table__
OFFSET: Any = bindparam("offset")
LIMIT: Any = bindparam("limit")
_IN_SITE = AuditEvent.site_id == bindparam("site_id")  # the caller's row binds the same site


def _newest_first(columns: Any) -> list[Any]:
    return [columns.id.desc()]


def serialize(row: Any) -> dict[str, Any]:
    target: dict[str, Any] = {"type": row.target_type, "id": row.target_id}
    if row.target_type == "interaction":
        target["version"] = row.target_version
    return {
        "id": row.id,
        "occurred_at": isoformat(row.occurred_at),
        "via": row.via,
        "actor": {"id": row.actor_id, "username": row.actor_username} if row.actor_id is not None else None,
        "operator": row.operator,
        "site_id": row.site_id,
        "request_id": row.request_id,
        "gateway_request_id": row.gateway_request_id,
        "action": row.action,
        "target": target,
        "changes": row.changes or {},
    }


def _params(query: Pagination, **extra: Any) -> dict[str, Any]:
    return {"offset": query.offset, "limit": query.per_page, **extra}


# --- a site's events -------------------------------------------------------------------------------


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.action:
        found.append(
            AuditEvent.action == query.action[0]
            if len(query.action) == 1
            else AuditEvent.action.in_(query.action)
        )
    if query.actor_id is not None:
        found.append(AuditEvent.actor_id == query.actor_id)
    if query.target_type is not None:
        found.append(AuditEvent.target_type == query.target_type)
    if query.target_id is not None:
        found.append(AuditEvent.target_id == query.target_id)
    if query.since is not None:
        found.append(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        found.append(AuditEvent.occurred_at <= query.until)
    return found


_SITE_TOTAL = (
    select(SiteAuditCount.events)
    .where(SiteAuditCount.site_id == bindparam("site_id"))
    .scalar_subquery()
    .label("site_total")
)
_UNFILTERED = callers.fold(
    select(*_EVENTS.c).where(_IN_SITE).order_by(AuditEvent.id.desc()).offset(OFFSET).limit(LIMIT),
    when=callers.ADMIN,
    order_by=_newest_first,
    extra=(_SITE_TOTAL,),
)


def site_page(query: AuditQuery) -> tuple[Any, dict[str, Any]]:
    """The first statement of GET /api/sites/{id}/audit (a page folded with the caller's rights at
    the path's site, which binds `site_id`) and its parameters."""
    filters = _filters(query)
    if not filters:
        return _UNFILTERED, _params(query)
    page = (
        select(*_EVENTS.c)
        .where(_IN_SITE, *filters)
        .order_by(AuditEvent.id.desc())
        .offset(OFFSET)
        .limit(LIMIT)
    )
    return callers.fold(page, when=callers.ADMIN, order_by=_newest_first), _params(query)


def site_events(
    session: Session, *, site_id: int, query: AuditQuery, rows: callers.Folded
) -> tuple[list[dict[str, Any]], int]:
    def count() -> int:
        if "site_total" in rows.head._fields:
            return rows.head.site_total or 0
        stmt = select(func.count()).select_from(AuditEvent).where(_IN_SITE, *_filters(query))
        return session.scalar(stmt, {"site_id": site_id}) or 0

    return [serialize(row) for row in rows], page_total(query, len(rows), count)


# --- one interaction's history ---------------------------------------------------------------------

_OF_INTERACTION = (
    _IN_SITE,
    AuditEvent.target_type == "interaction",
    AuditEvent.target_id == bindparam("interaction_id"),
)
_INTERACTION_EXISTS = (
    exists()
    .where(Interaction.id == bindparam("interaction_id"), Interaction.site_id == bindparam("site_id"))
    .label("interaction_exists")
)
HISTORY = callers.fold(
    select(*_EVENTS.c, func.count().over().label("total"))
    .where(*_OF_INTERACTION)
    .order_by(AuditEvent.id.desc())
    .offset(OFFSET)
    .limit(LIMIT),
    order_by=_newest_first,
    extra=(_INTERACTION_EXISTS,),
)
_HISTORY_COUNT = select(func.count()).select_from(AuditEvent).where(*_OF_INTERACTION)


def history_params(interaction_id: int, query: HistoryQuery) -> dict[str, Any]:
    return _params(query, interaction_id=interaction_id)


def history(
    session: Session, *, site_id: int, interaction_id: int, query: HistoryQuery, rows: callers.Folded
) -> tuple[list[dict[str, Any]], int]:
    total = page_total(
        query,
        len(rows),
        lambda: (
            rows[0].total
            if rows
            else session.scalar(_HISTORY_COUNT, {"site_id": site_id, "interaction_id": interaction_id}) or 0
        ),
    )
    return [serialize(row) for row in rows], total
