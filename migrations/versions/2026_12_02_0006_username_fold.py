"""Usernames are unique by one fold that Python, PostgreSQL and Redis keys share: ASCII letters
lowercased, everything else as it is — `lower(username COLLATE "C")`, which lowercases A-Z and
nothing else under every database locale (chalicelib/kit/usernames.py).

The index it replaces, `lower(username)`, folded case by the database's locale: 'İlker' and
'ilker' were one name to PostgreSQL under C.UTF-8 but two to Python, so lookups and the unique
index disagreed. Two existing names can only collide under the new fold where the locale's lower()
kept them apart while they differ only in the case of ASCII letters (a Turkish locale: 'I' is not
'i'); the upgrade then stops and names them, to be renamed first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FOLDED = 'lower(username COLLATE "C")'


def upgrade() -> None:
    clashes = (
        op.get_bind()
        .execute(
            text(
                f"SELECT string_agg(username, ', ' ORDER BY username) FROM users GROUP BY {FOLDED} "
                "HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        raise RuntimeError(
            "these usernames differ only in the case of ASCII letters; rename all but "
            "one of each group, then migrate again: " + "; ".join(clashes)
        )
    op.execute(f"CREATE UNIQUE INDEX uq_users_username_folded ON users ({FOLDED})")
    op.execute("DROP INDEX uq_users_username_lower")


def downgrade() -> None:
    # Fails if two names now differ under the locale's lower() only (e.g. 'İlker' and 'ilker').
    op.execute("CREATE UNIQUE INDEX uq_users_username_lower ON users (lower(username))")
    op.execute("DROP INDEX uq_users_username_folded")
