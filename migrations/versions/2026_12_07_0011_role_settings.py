"""The API's connection settings move to its database role: `statement_timeout`
(DB_STATEMENT_TIMEOUT_MS as the migration runs) and `TimeZone` UTC, set with
`ALTER ROLE CURRENT_USER IN DATABASE <this database>` (chalicelib/db.py, `role_settings`).

Connections used to start with `SET`s of their own; a transaction pooler (RDS Proxy, PgBouncer)
shares server connections between clients, where a session's setting would leak to the next
client (and makes RDS Proxy pin the client). The role is the one running the migration: where the
API connects as another role (deployed through RDS Proxy with a secret of its own, say), apply them
to that role with `cli role-settings --role NAME` (docs/deployment.md).

Downgrade: the two settings are reset on the role (the older code sets them per connection).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from chalicelib.config import get_settings
from chalicelib.db import apply_role_settings, role_settings

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_role_settings(op.get_bind(), statement_ms=get_settings().db_statement_timeout_ms)


def downgrade() -> None:
    bind = op.get_bind()
    database = bind.exec_driver_sql("SELECT current_database()").scalar_one()
    quoted = bind.dialect.identifier_preparer.quote_identifier(database)
    for name in role_settings(0):
        bind.exec_driver_sql(f"ALTER ROLE CURRENT_USER IN DATABASE {quoted} RESET {name}")
