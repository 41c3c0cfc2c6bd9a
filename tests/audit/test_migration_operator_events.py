"""Migration 0012 on a database of its own: the trail holds `user.unlocked` and `audit.pruned` (with
its `audit` target) from then on; down again, those events go and the old checks come back."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.audit.test_migration import scratch  # noqa: F401  # the fixture

BEFORE, REVISION = "0011", "0012"
UNLOCKED = (
    "INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id) "
    "VALUES ('cli', 'ops', NULL, 'user.unlocked', 'user', 1)"
)
PRUNED = (
    "INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id, changes) "
    """VALUES ('cli', 'ops', NULL, 'audit.pruned', 'audit', 7, '{"deleted": {"from": null, "to": 7}}')"""
)


def test_the_operators_events_fit_only_after_the_migration(scratch):  # noqa: F811
    engine, config, _role = scratch
    command.upgrade(config, BEFORE)
    for statement in (UNLOCKED, PRUNED):
        with pytest.raises(DBAPIError, match="ck_audit_events_(action|target_type)"), engine.begin() as conn:
            conn.execute(text(statement))

    command.upgrade(config, REVISION)
    with engine.begin() as conn:
        conn.execute(text(UNLOCKED))
        conn.execute(text(PRUNED))
        conn.execute(
            text(
                "INSERT INTO audit_events (via, operator, action, target_type, target_id) "
                "VALUES ('cli', 'ops', 'site.created', 'site', 1)"
            )
        )
        assert conn.scalar(text("SELECT count(*) FROM audit_events")) == 3

    command.downgrade(config, BEFORE)
    with engine.begin() as conn:
        assert conn.scalars(text("SELECT action FROM audit_events")).all() == ["site.created"]
    with pytest.raises(DBAPIError, match="ck_audit_events_(action|target_type)"), engine.begin() as conn:
        conn.execute(text(UNLOCKED))

    command.upgrade(config, "head")
    with engine.begin() as conn:
        conn.execute(text(PRUNED))
