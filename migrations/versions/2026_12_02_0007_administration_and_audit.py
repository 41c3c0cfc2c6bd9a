"""Administration over the API and the audit trail.

- users: `password_hash` may be null (a *pending* account, created by a site admin and waiting for
  its first password), `platform_admin` (may create sites over the API), `created_by_site_id` (the
  site whose admins issue a pending account's setup tokens);
- sites: names unique case-insensitively (`uq_sites_name_lower`; the upgrade stops and names any
  names that differ only in case);
- setup_tokens: one per pending account, stored as a SHA-256 only;
- audit_events: the append-only trail (an UPDATE is refused by a trigger), its indexes (a site's
  newest page, one target's history, the actor and action filters, a BRIN on the time for
  pruning), and site_audit_counts, kept exact by statement-level triggers like the interaction
  counts of migration 0004, so an unfiltered audit page's total is one primary-key read.

Rights: every role other than the owner that holds privileges on `interactions` (the application's
role, where it is not the schema owner) gets only INSERT and SELECT on audit_events — whatever
default privileges gave it — and what the API needs on the other new tables.

Downgrade deletes pending accounts (the old schema cannot hold an account without a password) and
drops the trail.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIONS = (
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
    "site.created",
    "site.updated",
    "site.activated",
    "site.deactivated",
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _application_roles() -> list[str]:
    """Roles other than the owner holding any privilege on interactions (the API's role), as SQL
    names (regrole quotes them where needed)."""
    return list(
        op.get_bind()
        .execute(
            text(
                "SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a "
                "WHERE c.oid = 'interactions'::regclass AND a.grantee <> c.relowner AND a.grantee <> 0 "
                "ORDER BY 1"
            )
        )
        .scalars()
    )


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    clashes = (
        op.get_bind()
        .execute(
            text(
                "SELECT string_agg(name, ', ' ORDER BY name) FROM sites GROUP BY lower(name) HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        raise RuntimeError(
            "these site names differ only in case; rename all but one of each group, "
            "then migrate again: " + "; ".join(clashes)
        )
    op.execute("CREATE UNIQUE INDEX uq_sites_name_lower ON sites (lower(name))")

    op.execute("ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL")
    op.execute("ALTER TABLE users ADD COLUMN platform_admin boolean NOT NULL DEFAULT false")
    op.execute("""ALTER TABLE users ADD COLUMN created_by_site_id integer
        CONSTRAINT fk_users_created_by_site_id_sites REFERENCES sites (id) ON DELETE SET NULL""")

    op.execute("""
        CREATE TABLE setup_tokens (
            user_id integer NOT NULL,
            token_hash varchar(64) NOT NULL,
            expires_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_setup_tokens PRIMARY KEY (user_id),
            CONSTRAINT uq_setup_tokens_token_hash UNIQUE (token_hash),
            CONSTRAINT fk_setup_tokens_user_id_users FOREIGN KEY (user_id)
                REFERENCES users (id) ON DELETE CASCADE
        )""")

    op.execute(f"""
        CREATE TABLE audit_events (
            id bigint GENERATED ALWAYS AS IDENTITY,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            via varchar(8) NOT NULL,
            actor_id integer,
            actor_username varchar(64),
            operator varchar(255),
            site_id integer,
            request_id varchar(128),
            gateway_request_id varchar(128),
            action varchar(64) NOT NULL,
            target_type varchar(16) NOT NULL,
            target_id bigint NOT NULL,
            target_version integer,
            changes jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            CONSTRAINT pk_audit_events PRIMARY KEY (id),
            CONSTRAINT ck_audit_events_via CHECK (via in ('api', 'cli')),
            CONSTRAINT ck_audit_events_target_type CHECK (target_type in ('interaction', 'user', 'site')),
            CONSTRAINT ck_audit_events_action CHECK (action in ({_quoted(ACTIONS)})),
            CONSTRAINT ck_audit_events_origin CHECK (
                (via = 'api' and actor_id is not null and operator is null) or
                (via = 'cli' and actor_id is null and operator is not null))
        )""")
    op.execute("CREATE INDEX ix_audit_events_site_id_id ON audit_events (site_id, id)")
    op.execute(
        "CREATE INDEX ix_audit_events_site_id_target ON audit_events (site_id, target_type, target_id, id)"
    )
    op.execute("CREATE INDEX ix_audit_events_site_id_actor_id ON audit_events (site_id, actor_id, id)")
    op.execute("CREATE INDEX ix_audit_events_site_id_action ON audit_events (site_id, action, id)")
    op.execute("CREATE INDEX ix_audit_events_occurred_at ON audit_events USING brin (occurred_at)")
    op.execute("""
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("""CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""")

    op.execute("""
        CREATE TABLE site_audit_counts (
            site_id integer NOT NULL,
            events bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_site_audit_counts PRIMARY KEY (site_id),
            CONSTRAINT fk_site_audit_counts_site_id_sites FOREIGN KEY (site_id)
                REFERENCES sites (id) ON DELETE CASCADE
        )""")
    op.execute("""
        CREATE FUNCTION site_audit_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO site_audit_counts AS c (site_id, events)
            SELECT site_id, count(*) FROM new_rows WHERE site_id IS NOT NULL GROUP BY site_id ORDER BY site_id
            ON CONFLICT (site_id) DO UPDATE SET events = c.events + EXCLUDED.events;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION site_audit_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_audit_counts AS c SET events = c.events - gone.n
            FROM (SELECT site_id, count(*) AS n FROM old_rows WHERE site_id IS NOT NULL
                  GROUP BY site_id) AS gone
            WHERE c.site_id = gone.site_id;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION site_audit_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE site_audit_counts SET events = 0;
            RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER site_audit_counts_add AFTER INSERT ON audit_events
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION site_audit_counts_add()""")
    op.execute("""CREATE TRIGGER site_audit_counts_remove AFTER DELETE ON audit_events
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION site_audit_counts_remove()""")
    op.execute("""CREATE TRIGGER site_audit_counts_reset AFTER TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION site_audit_counts_reset()""")

    for role in _application_roles():
        op.execute(f"REVOKE ALL ON audit_events FROM {role}")
        op.execute(f"GRANT SELECT, INSERT ON audit_events TO {role}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON setup_tokens TO {role}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON site_audit_counts TO {role}")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP TABLE site_audit_counts")
    op.execute("DROP TABLE audit_events")
    op.execute(
        "DROP FUNCTION site_audit_counts_add(), site_audit_counts_remove(), site_audit_counts_reset(), "
        "audit_events_append_only()"
    )
    op.execute("DROP TABLE setup_tokens")
    op.execute("DELETE FROM users WHERE password_hash IS NULL")
    op.execute("ALTER TABLE users DROP COLUMN created_by_site_id")
    op.execute("ALTER TABLE users DROP COLUMN platform_admin")
    op.execute("ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL")
    op.execute("DROP INDEX uq_sites_name_lower")
