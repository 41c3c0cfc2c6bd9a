"""A per-site change number next to the per-site count: every statement that inserts, updates,
deletes or truncates a site's interactions gives the site a new one (from one sequence), in its own
transaction.

A filtered list's `total_records` (a broad search counts tens of thousands of rows: ~200 ms at
200,000 rows in a site) is remembered per container together with the change number it was
counted at, and reused only while that number is unchanged, so a remembered total is never stale.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One sequence for every site, never reset by a TRUNCATE ... RESTART IDENTITY (it belongs to no
    # column): a change number is never handed out twice, even to a site whose row was recreated.
    op.execute("CREATE SEQUENCE site_interaction_changes")
    op.execute("ALTER TABLE site_interaction_counts ADD COLUMN changes bigint NOT NULL DEFAULT 0")
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO site_interaction_counts AS c (site_id, interactions, changes)
            SELECT site_id, count(*), nextval('site_interaction_changes')
            FROM new_rows GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE
                SET interactions = c.interactions + EXCLUDED.interactions, changes = EXCLUDED.changes;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts AS c
            SET interactions = c.interactions - gone.n, changes = nextval('site_interaction_changes')
            FROM (SELECT site_id, count(*) AS n FROM old_rows GROUP BY site_id) AS gone
            WHERE c.site_id = gone.site_id;
            RETURN NULL;
        END $$""")
    # Any update may change what a filter matches: it bumps the change number of every site it
    # touched (and moves counts when a row changed site, which the API never does).
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO site_interaction_counts AS c (site_id, interactions, changes)
            SELECT site_id, sum(delta), nextval('site_interaction_changes') FROM (
                SELECT site_id, 1 AS delta FROM new_rows
                UNION ALL SELECT site_id, -1 FROM old_rows) AS moves
            GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE
                SET interactions = c.interactions + EXCLUDED.interactions, changes = EXCLUDED.changes;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts
            SET interactions = 0, changes = nextval('site_interaction_changes');
            RETURN NULL;
        END $$""")


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO site_interaction_counts AS c (site_id, interactions)
            SELECT site_id, count(*) FROM new_rows GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE SET interactions = c.interactions + EXCLUDED.interactions;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts AS c SET interactions = c.interactions - gone.n
            FROM (SELECT site_id, count(*) AS n FROM old_rows GROUP BY site_id) AS gone
            WHERE c.site_id = gone.site_id;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION site_interaction_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
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
        CREATE OR REPLACE FUNCTION site_interaction_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_interaction_counts SET interactions = 0;
            RETURN NULL;
        END $$""")
    op.execute("ALTER TABLE site_interaction_counts DROP COLUMN changes")
    op.execute("DROP SEQUENCE IF EXISTS site_interaction_changes")
