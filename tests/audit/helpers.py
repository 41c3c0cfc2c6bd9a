"""Reading the audit trail straight from its table, for tests of the changes that write it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from chalicelib.audit.service import serialize
from chalicelib.db import session_scope
from chalicelib.models import AuditEvent


def events(action: str | None = None, **where: Any) -> list[dict[str, Any]]:
    """Stored events (as the API shows them), oldest first; `action` and columns to filter on."""
    with session_scope(transaction=False) as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, name) == value)
        return [serialize(event) for event in session.scalars(stmt)]


def event_count() -> int:
    with session_scope(transaction=False) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
