"""The Finder's indexes: site-first btrees for every sort and filter, trigram GIN for substrings.

Every list query is `WHERE site_id = :site ... ORDER BY <key>, id LIMIT n`, so each btree leads with
site_id and ends with id (ties broken by id in the same direction; a backward scan serves `desc`).
Columns that may be null get a second index for `DESC NULLS LAST`, which a backward scan of the
ascending one cannot give. Text sorts are `lower(col) COLLATE "C"`, exactly as
chalicelib/interactions/queries.py writes them. The GIN indexes lead with site_id too (btree_gin).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Must stay identical to queries.SEARCH_DOCUMENT_SQL (a test compares them).
SEARCH_DOCUMENT_SQL = (
    "(title || ' ' || type || ' ' || lead || ' ' || coalesce(location, '') || ' ' || "
    "coalesce(description, '') || ' ' || coalesce(notes, ''))"
)

BTREES = {
    # sorts (and the date filters, which are ranges on start_datetime)
    "ix_interactions_site_start": "site_id, start_datetime, id",
    "ix_interactions_site_created": "site_id, created_at, id",
    "ix_interactions_site_title": 'site_id, lower(title) COLLATE "C", id',
    "ix_interactions_site_lead": 'site_id, lower(lead) COLLATE "C", id',
    # sort by type, and the exact type filter (with a count that reads only the index)
    "ix_interactions_site_type": "site_id, type, id",
    "ix_interactions_site_end_asc": "site_id, end_datetime ASC NULLS LAST, id ASC",
    "ix_interactions_site_end_desc": "site_id, end_datetime DESC NULLS LAST, id DESC",
    "ix_interactions_site_location_asc": 'site_id, lower(location) COLLATE "C" ASC NULLS LAST, id ASC',
    "ix_interactions_site_location_desc": 'site_id, lower(location) COLLATE "C" DESC NULLS LAST, id DESC',
    "ix_interactions_site_updated_asc": "site_id, updated_at ASC NULLS LAST, id ASC",
    "ix_interactions_site_updated_desc": "site_id, updated_at DESC NULLS LAST, id DESC",
}

TRIGRAMS = {
    "ix_interactions_site_search_trgm": SEARCH_DOCUMENT_SQL,
    "ix_interactions_site_title_trgm": "title",
    "ix_interactions_site_lead_trgm": "lead",
    "ix_interactions_site_location_trgm": "location",
}


def upgrade() -> None:
    # btree_gin lets a GIN index lead with site_id (a trusted extension since PostgreSQL 13).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for name, columns in BTREES.items():
        op.execute(f"CREATE INDEX {name} ON interactions ({columns})")
    for name, expression in TRIGRAMS.items():
        op.execute(f"CREATE INDEX {name} ON interactions USING gin (site_id, {expression} gin_trgm_ops)")


def downgrade() -> None:
    for name in [*TRIGRAMS, *BTREES]:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP EXTENSION IF EXISTS btree_gin")
