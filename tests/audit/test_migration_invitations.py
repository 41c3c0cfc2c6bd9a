"""Migration 0008 on a database of its own: every setup token is invalidated, every pending account
becomes a pending invitation per site with no usable token and a queued message, accounts set up
through a setup token are recorded for review, addresses fold one way; down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.audit.test_migration import scratch  # noqa: F401  # the fixture

BEFORE, REVISION = "0010", "0008"


def _old_world(conn) -> None:
    conn.execute(text("INSERT INTO sites (name) VALUES ('Alpha'), ('Beta')"))
    conn.execute(
        text(
            "INSERT INTO users (username, email, password_hash, created_by_site_id) VALUES "
            "('kept', 'Kept@Example.com', 'h', NULL), "  # 1: an ordinary account
            "('waiting', 'Waiting@example.com', NULL, 2), "  # 2: pending, in two sites
            "('setup', 'setup@example.com', 'h', 2), "  # 3: set up with a token Beta issued
            "('viaevent', 'viaevent@example.com', 'h', NULL)"  # 4: only the event tells
        )
    )
    conn.execute(
        text(
            "INSERT INTO site_memberships (user_id, site_id, role) VALUES "
            "(2, 1, 'viewer'), (2, 2, 'editor'), (3, 1, 'viewer'), (4, 2, 'admin')"
        )
    )
    conn.execute(
        text(
            "INSERT INTO setup_tokens (user_id, token_hash, expires_at) VALUES (2, repeat('a', 64), now() + interval '1 day')"
        )
    )
    conn.execute(
        text(
            "INSERT INTO audit_events (via, actor_id, site_id, action, target_type, target_id) VALUES "
            "('api', 9, 1, 'user.setup_token_issued', 'user', 4), ('api', 4, 1, 'user.setup_completed', 'user', 4)"
        )
    )


def test_pending_accounts_become_invitations_and_setup_tokens_die(scratch):  # noqa: F811
    engine, config, _role = scratch
    command.upgrade(config, BEFORE)
    with engine.begin() as conn:
        _old_world(conn)

    command.upgrade(config, REVISION)

    with engine.begin() as conn:
        assert conn.scalar(text("SELECT to_regclass('setup_tokens')")) is None
        assert conn.scalars(text("SELECT username FROM users ORDER BY id")).all() == [
            "kept",
            "setup",
            "viaevent",
        ]
        invitations = conn.execute(
            text(
                "SELECT i.site_id, i.email, i.role, i.status, i.token_hash, i.invited_by, o.invitation_id IS NOT NULL "
                "FROM invitations i LEFT JOIN invitation_outbox o ON o.invitation_id = i.id ORDER BY i.site_id"
            )
        ).all()
        assert [tuple(r) for r in invitations] == [
            (1, "Waiting@example.com", "viewer", "pending", None, None, True),
            (2, "Waiting@example.com", "editor", "pending", None, None, True),
        ]
        created = conn.execute(
            text(
                "SELECT via, operator, site_id, target_type FROM audit_events WHERE action = 'invitation.created'"
            )
        ).all()
        assert sorted(tuple(r) for r in created) == [
            ("cli", "migration 0008", 1, "invitation"),
            ("cli", "migration 0008", 2, "invitation"),
        ]
        reviewed = conn.execute(
            text(
                "SELECT user_id, issuing_site_id, completed_at IS NOT NULL FROM setup_token_accounts ORDER BY user_id"
            )
        ).all()
        assert [tuple(r) for r in reviewed] == [(3, 2, False), (4, 1, True)]
        assert (
            conn.scalar(text("SELECT email_folded FROM users WHERE username = 'kept'")) == "kept@example.com"
        )
    for refused in (
        "INSERT INTO users (username, email, password_hash) VALUES ('k2', 'KEPT@example.COM', 'h')",
        "INSERT INTO users (username, email) VALUES ('nopass', 'nopass@example.com')",
        # one pending invitation per site and address
        "INSERT INTO invitations (site_id, email, role, expires_at) "
        "VALUES (1, 'WAITING@example.com', 'viewer', now())",
    ):
        with pytest.raises(DBAPIError, match="'C': '23"), engine.connect() as conn:  # integrity violations
            conn.execute(text(refused))

    command.downgrade(config, BEFORE)
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT to_regclass('invitations')")) is None
        assert conn.scalar(text("SELECT count(*) FROM setup_tokens")) == 0
        assert conn.scalar(text("SELECT count(*) FROM audit_events WHERE action LIKE 'invitation.%'")) == 0
        assert conn.execute(text("SELECT username, created_by_site_id FROM users ORDER BY id")).all() == [
            ("kept", None),
            ("setup", 2),
            ("viaevent", 1),
        ]
    command.upgrade(config, REVISION)
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == REVISION
