"""Per-site interaction counts, kept exact by statement-level triggers.

An unfiltered list's `total_records` was an index-only count of the whole site on every request
(30-70 ms at 200,000 rows on a busy server); it is now one primary-key read. The triggers fire once
per statement (with transition tables), so a COPY of a million rows updates each site's count once,
and a single-row create or delete adds one small UPDATE to its transaction. Truncating the table
resets the counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE site_interaction_counts (
            site_id integer NOT NULL,
            interactions bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_site_interaction_counts PRIMARY KEY (site_id),
            CONSTRAINT fk_site_interaction_counts_site_id_sites FOREIGN KEY (site_id)
                REFERENCES sites (id) ON DELETE CASCADE
        )""")
    op.execute("""
        INSERT INTO site_interaction_counts (site_id, interactions)
        SELECT site_id, count(*) FROM interactions GROUP BY site_id""")
    op.execute("""
        CREATE FUNCTION site_interaction_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO site_interaction_counts AS c (site_id, interactions)
            SELECT site_id, count(*) FROM new_rows GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE SET interactions = c.interactions + EXCLUDED.interactions;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION site_interaction_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts AS c SET interactions = c.interactions - gone.n
            FROM (SELECT site_id, count(*) AS n FROM old_rows GROUP BY site_id) AS gone
            WHERE c.site_id = gone.site_id;
            RETURN NULL;
        END $$""")
    # The API never moves a row to another site; this keeps the counts right if anything else does.
    op.execute("""
        CREATE FUNCTION site_interaction_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                           WHERE n.site_id <> o.site_id) THEN
                RETURN NULL;
            END IF;
            INSERT INTO site_interaction_counts AS c (site_id, interactions)
            SELECT site_id, sum(delta) FROM (
                SELECT site_id, 1 AS delta FROM new_rows
                UNION ALL SELECT site_id, -1 FROM old_rows) AS moves
            GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE SET interactions = c.interactions + EXCLUDED.interactions;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION site_interaction_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts SET interactions = 0;
            RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER site_interaction_counts_add AFTER INSERT ON interactions
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION site_interaction_counts_add()""")
    op.execute("""CREATE TRIGGER site_interaction_counts_remove AFTER DELETE ON interactions
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION site_interaction_counts_remove()""")
    op.execute("""CREATE TRIGGER site_interaction_counts_move AFTER UPDATE ON interactions
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION site_interaction_counts_move()""")
    op.execute("""CREATE TRIGGER site_interaction_counts_reset AFTER TRUNCATE ON interactions
        FOR EACH STATEMENT EXECUTE FUNCTION site_interaction_counts_reset()""")


def downgrade() -> None:
    for name in ("add", "remove", "move", "reset"):
        op.execute(f"DROP TRIGGER IF EXISTS site_interaction_counts_{name} ON interactions")
        op.execute(f"DROP FUNCTION IF EXISTS site_interaction_counts_{name}()")
    op.execute("DROP TABLE IF EXISTS site_interaction_counts")
