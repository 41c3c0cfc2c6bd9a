"""Reading the audit trail: a site's events (its admins), one interaction's history (whoever may read
it). Newest first (by id); every read is scoped to one site, like interactions.

A page is the request's first statement, folded with the caller's rights (one round trip), by
number or after a cursor (the last event's id: `id < :after_id`, the same index range at any
depth). An unfiltered site page's total is the site's trigger-kept count (site_audit_counts), read
with the page; a filtered total is counted only when the page does not tell it; either stops at
COUNT_CAP (kit.pagination).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, func, select
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.audit.schemas import AuditQuery, HistoryQuery
from chalicelib.config import get_settings
from chalicelib.kit.pagination import (
    COUNT_CAP,
    ListRead,
    Page,
    Pagination,
    Position,
    capped,
    open_cursor,
    settle,
)
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import AuditEvent, Interaction, SiteAuditCount

_EVENTS = AuditEvent.__table__
OFFSET: Any = bindparam("offset")
LIMIT: Any = bindparam("limit")
AFTER_ID: Any = bindparam("after_id")
_IN_SITE = AuditEvent.site_id == bindparam("site_id")  # the caller's row binds the same site


def _newest_first(columns: Any) -> list[Any]:
    return [columns.id.desc()]


def serialize(row: Any) -> dict[str, Any]:
    """An event as the command line shows it: `operator` is the operating-system account."""
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


def shown(row: Any, *, operator_label: str | None) -> dict[str, Any]:
    """An event as the API shows it: a command-line event's operator is `operator_label`
    (OPERATOR_LABEL, for the site's admins; None for anyone else), never the account."""
    return {**serialize(row), "operator": operator_label if row.operator is not None else None}


def operator_label(role: str | None) -> str | None:
    """How the API names an operator to a caller with this role on the site."""
    return get_settings().operator_label if role == "admin" else None


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


def _page(conditions: tuple[Any, ...], keyset: bool) -> Any:
    """Events newest first: by OFFSET, or after a cursor's id (the same index range at any depth)."""
    page = select(*_EVENTS.c).where(*conditions).order_by(AuditEvent.id.desc()).limit(LIMIT)
    return page.where(AuditEvent.id < AFTER_ID) if keyset else page.offset(OFFSET)


def _params(query: Pagination, position: Position | None, **extra: Any) -> dict[str, Any]:
    if position is None:
        return {"offset": query.offset, "limit": query.limit, **extra}
    return {"after_id": position.id, "limit": query.limit, **extra}


_SITE_TOTAL = (
    select(SiteAuditCount.events)
    .where(SiteAuditCount.site_id == bindparam("site_id"))
    .scalar_subquery()
    .label("site_total")
)
_UNFILTERED = access.fold(
    _page((_IN_SITE,), keyset=False), when=access.ADMIN, order_by=_newest_first, extra=(_SITE_TOTAL,)
)
_UNFILTERED_AFTER = access.fold(_page((_IN_SITE,), keyset=True), when=access.ADMIN, order_by=_newest_first)


def _site_binding(site_id: int | None, query: AuditQuery) -> str:
    filters = {
        name: value
        for name in ("action", "actor_id", "target_type", "target_id", "since", "until")
        if (value := getattr(query, name)) is not None
    }
    return json.dumps(["audit", site_id, filters], sort_keys=True, default=lambda value: value.isoformat())


def site_read(query: AuditQuery, *, site_id: int | None) -> ListRead:
    """The first statement of GET /api/sites/{id}/audit (a page folded with the caller's rights at
    the path's site, which binds `site_id`) and its parameters; a cursor of another query is a 400."""
    binding = _site_binding(site_id, query)
    position = open_cursor(query, binding)
    filters = _filters(query)
    if not filters:
        statement = _UNFILTERED if position is None else _UNFILTERED_AFTER
    else:
        statement = access.fold(
            _page((_IN_SITE, *filters), keyset=position is not None),
            when=access.ADMIN,
            order_by=_newest_first,
        )
    return ListRead(statement, _params(query, position), position, binding)


def site_events(session: Session, *, site_id: int, listing: access.Listing[AuditQuery]) -> Page:
    """A page of the site's events. An unfiltered total is the site's kept count, a filtered one
    is counted; either stops at COUNT_CAP, as every list's total but the interactions' kept one."""

    query, read, rows, head = listing.query, listing.read, listing.rows, listing.head

    def count() -> tuple[int, bool]:
        if "site_total" in head._fields:
            return capped(head.site_total)
        matching = select(AuditEvent.id).where(_IN_SITE, *_filters(query)).limit(COUNT_CAP + 1).subquery()
        return capped(session.scalar(select(func.count()).select_from(matching), {"site_id": site_id}))

    found = settle(
        query, rows, position=read.position, count=count, binding=read.binding, key=lambda _row: None
    )
    label = operator_label("admin")  # the site's admins only reach this
    return replace(found, items=[shown(row, operator_label=label) for row in found.items])


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
HISTORY, HISTORY_AFTER = (
    access.fold(_page(_OF_INTERACTION, keyset=keyset), order_by=_newest_first, extra=(_INTERACTION_EXISTS,))
    for keyset in (False, True)
)
_HISTORY_COUNT = select(func.count()).select_from(
    select(AuditEvent.id).where(*_OF_INTERACTION).limit(COUNT_CAP + 1).subquery()
)


def history_read(query: HistoryQuery, *, site_id: int | None, interaction_id: int) -> ListRead:
    binding = json.dumps(["history", site_id, interaction_id])
    position = open_cursor(query, binding)
    statement = HISTORY if position is None else HISTORY_AFTER
    return ListRead(statement, _params(query, position, interaction_id=interaction_id), position, binding)


def interaction_exists(listing: access.Listing[HistoryQuery]) -> bool:
    """Whether a history's interaction exists in the site (read with its page)."""
    return bool(listing.head.interaction_exists)


def history(
    session: Session,
    *,
    site_id: int,
    interaction_id: int,
    listing: access.Listing[HistoryQuery],
    role: str | None,
) -> Page:
    """A page of the interaction's events, as a caller with `role` on the site sees them."""
    query, read, rows = listing.query, listing.read, listing.rows
    found = settle(
        query,
        rows,
        position=read.position,
        count=lambda: capped(
            session.scalar(_HISTORY_COUNT, {"site_id": site_id, "interaction_id": interaction_id})
        ),
        binding=read.binding,
        key=lambda _row: None,
    )
    label = operator_label(role)
    return replace(found, items=[shown(row, operator_label=label) for row in found.items])
