"""The operator's commands that changed things unrecorded record them: `user.unlocked` (`unlock`) and
`audit.pruned` (`prune-audit`; no site, its target the newest event it deleted, of target type
`audit`).

Downgrade: events of the two actions go (the old checks cannot hold them).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    "interaction.created",
    "interaction.updated",
    "interaction.deleted",
    "membership.added",
    "membership.role_changed",
    "membership.removed",
    "user.created",
    "user.setup_token_issued",
    "user.setup_completed",
    "user.password_changed",
    "user.activated",
    "user.deactivated",
    "user.deleted",
    "user.platform_admin_changed",
    "invitation.created",
    "invitation.resent",
    "invitation.revoked",
    "invitation.accepted",
    "site.created",
    "site.updated",
    "site.activated",
    "site.deactivated",
)
NEW_ACTIONS = ("user.unlocked", "audit.pruned")
OLD_TARGETS = ("interaction", "user", "site", "invitation")
NEW_TARGETS = ("audit",)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _audit_checks(actions: tuple[str, ...], targets: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE audit_events DROP CONSTRAINT ck_audit_events_action")
    op.execute("ALTER TABLE audit_events DROP CONSTRAINT ck_audit_events_target_type")
    op.execute(
        f"ALTER TABLE audit_events ADD CONSTRAINT ck_audit_events_action CHECK (action in ({_quoted(actions)}))"
    )
    op.execute(
        "ALTER TABLE audit_events ADD CONSTRAINT ck_audit_events_target_type "
        f"CHECK (target_type in ({_quoted(targets)}))"
    )


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    _audit_checks(OLD_ACTIONS + NEW_ACTIONS, OLD_TARGETS + NEW_TARGETS)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(
        f"DELETE FROM audit_events WHERE action IN ({_quoted(NEW_ACTIONS)}) OR target_type IN ({_quoted(NEW_TARGETS)})"
    )
    _audit_checks(OLD_ACTIONS, OLD_TARGETS)
