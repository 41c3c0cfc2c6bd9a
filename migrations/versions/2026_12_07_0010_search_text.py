"""The search document stored lower-cased: `interactions.search_text`, a generated column, with its
trigram GIN index (leading with site_id) in place of migration 0002's index on the expression.

`search` matched `<document> ILIKE '%term%'`, which builds the document (six fields joined) and
lower-cases it for every row the trigram index hands back: a term whose trigrams are common (`with
of`) re-checks most of a site's rows, and a broad term's capped count re-checks ten thousand. Stored
lower-cased, the re-check is `search_text LIKE lower('%term%')`, the same match (PostgreSQL's ILIKE
lower-cases both sides under a multibyte encoding) at about a quarter of the cost.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

# Must stay identical to queries.SEARCH_DOCUMENT_SQL (a test compares them).
SEARCH_DOCUMENT_SQL = (
    "(title || ' ' || type || ' ' || lead || ' ' || coalesce(location, '') || ' ' || "
    "coalesce(description, '') || ' ' || coalesce(notes, ''))"
)
OLD_INDEX = "ix_interactions_site_search_trgm"
INDEX = "ix_interactions_site_search_text_trgm"


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE interactions ADD COLUMN search_text text GENERATED ALWAYS AS (lower({SEARCH_DOCUMENT_SQL})) STORED"
    )
    op.execute(f"CREATE INDEX {INDEX} ON interactions USING gin (site_id, search_text gin_trgm_ops)")
    op.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def downgrade() -> None:
    op.execute(
        f"CREATE INDEX {OLD_INDEX} ON interactions USING gin (site_id, {SEARCH_DOCUMENT_SQL} gin_trgm_ops)"
    )
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute("ALTER TABLE interactions DROP COLUMN search_text")
