"""Migration 0007 on a database of its own: where the application's role is not the schema owner it
gets only INSERT and SELECT on the events table (whatever default privileges would have given it),
and the migration goes down and up again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from devtools import embedded
from tests import environment

ROOT = Path(__file__).resolve().parents[2]
REVISION = "0007"
BEFORE = "0006"
HEAD = "0013"


@pytest.fixture
def scratch():
    """(URL, alembic config, role name): an empty database and a role like the API's, dropped after."""
    admin = environment.configure()["TEST_ADMIN_DATABASE_URL"]
    name = f"interactions_migration_{os.getpid()}"
    role = f"interactions_app_{os.getpid()}"
    embedded.ensure_database(admin, name, recreate=True)
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    try:
        yield engine, config, role
    finally:
        engine.dispose()
        cleanup = create_engine(admin, isolation_level="AUTOCOMMIT")
        with cleanup.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        cleanup.dispose()


def _privileges(conn, role: str, table: str) -> set[str]:
    return {
        p
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        if conn.scalar(text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": table, "p": p})
    }


def test_the_applications_role_may_only_insert_and_read_events(scratch):
    engine, config, role = scratch
    command.upgrade(config, BEFORE)
    with engine.connect() as conn:  # the API's role, as the deployment notes set it up
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(
            text(f'ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"')
        )

    command.upgrade(config, "head")

    with engine.connect() as conn:
        assert _privileges(conn, role, "audit_events") == {"SELECT", "INSERT"}
        for table in ("invitations", "invitation_outbox"):
            assert _privileges(conn, role, table) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert {"SELECT", "INSERT", "UPDATE"} <= _privileges(conn, role, "site_audit_counts")
        conn.execute(text("INSERT INTO sites (name, name_skeleton) VALUES ('Marketing', 'marketing')"))
        conn.execute(text(f'SET ROLE "{role}"'))
        conn.execute(
            text(
                "INSERT INTO audit_events (via, operator, site_id, action, target_type, target_id) "
                "VALUES ('cli', 'ops', 1, 'site.created', 'site', 1)"
            )
        )
        assert conn.scalar(text("SELECT count(*) FROM audit_events")) == 1
        for statement in (
            "UPDATE audit_events SET operator = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(statement))
        conn.execute(text("RESET ROLE"))
        assert conn.scalar(text("SELECT events FROM site_audit_counts WHERE site_id = 1")) == 1


def test_the_migration_goes_down_and_up_again(scratch):
    engine, config, _role = scratch
    command.upgrade(config, "head")
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO sites (name, name_skeleton) VALUES ('Marketing', 'marketing'), ('Sales', 'sales')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash) VALUES ('kept', 'kept@example.com', 'x')"
            )
        )

    command.downgrade(config, "0007")
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash) VALUES ('waiting', 'waiting@example.com', NULL)"
            )
        )
    command.downgrade(config, BEFORE)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('audit_events')")) is None
        assert conn.scalars(text("SELECT username FROM users")).all() == ["kept"]  # pending accounts go

    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD


def test_site_names_that_differ_only_in_case_stop_the_upgrade(scratch):
    engine, config, _role = scratch
    command.upgrade(config, BEFORE)
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO sites (name) VALUES ('Marketing'), ('MARKETING')"))
    with pytest.raises(RuntimeError, match="MARKETING, Marketing"):
        command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == BEFORE
