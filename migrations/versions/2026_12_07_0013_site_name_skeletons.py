"""Site names are unique by their confusable skeleton too: `sites.name_skeleton` (Unicode TR39's
skeleton of the NFKC form, case-folded: chalicelib/kit/names.py), filled in for every site, required,
with a unique index on its md5 (a skeleton may be longer than a B-tree entry may hold). `Аlpha` with a
Cyrillic `А` can no longer stand beside `Alpha`, even when two requests race.

The upgrade stops and names the sites whose names share a skeleton (rename all but one of each group
with the CLI's database access or the API, then migrate again).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections import defaultdict

from alembic import op
from sqlalchemy import text

from chalicelib.kit.names import skeleton

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEX = "uq_sites_name_skeleton"


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    bind = op.get_bind()
    op.execute("LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE")  # no site is added or renamed meanwhile
    groups: defaultdict[str, list[str]] = defaultdict(list)
    found = [
        (row.id, row.name, skeleton(row.name)) for row in bind.execute(text("SELECT id, name FROM sites"))
    ]
    for _id, name, key in found:
        groups[key].append(name)
    clashes = sorted(", ".join(sorted(names)) for names in groups.values() if len(names) > 1)
    if clashes:
        raise RuntimeError(
            "these sites' names look the same (one confusable skeleton); rename all but one of each "
            "group, then migrate again: " + "; ".join(clashes)
        )
    op.execute("ALTER TABLE sites ADD COLUMN name_skeleton text")
    if found:
        bind.execute(
            text("UPDATE sites SET name_skeleton = :key WHERE id = :id"),
            [{"key": key, "id": site_id} for site_id, _name, key in found],
        )
    op.execute("ALTER TABLE sites ALTER COLUMN name_skeleton SET NOT NULL")
    op.execute(f"CREATE UNIQUE INDEX {INDEX} ON sites (md5(name_skeleton))")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute("ALTER TABLE sites DROP COLUMN name_skeleton")
