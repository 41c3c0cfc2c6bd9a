"""The API's connections carry no state of their own: the statement timeout and the time zone come
from the database role (migration 0011, `cli role-settings`), no `SET` is sent at connect and no
named statement is left behind, so a transaction pooler can lend a server connection to anyone."""

from __future__ import annotations

from alembic import command
from sqlalchemy import bindparam, text

from chalicelib import cli, db
from chalicelib.config import get_settings
from devtools.pooler import POOLER_KEPT
from tests.audit.test_migration import scratch  # noqa: F401  # the fixture

SETTINGS_SQL = text(
    "SELECT name, setting, source FROM pg_settings "
    "WHERE name IN ('statement_timeout', 'TimeZone') OR (source = 'session' AND name NOT IN :kept)"
).bindparams(bindparam("kept", POOLER_KEPT, expanding=True))
SESSION_SQL = text(
    "SELECT count(*) FROM pg_settings WHERE source = 'session' AND name NOT IN :kept"
).bindparams(bindparam("kept", POOLER_KEPT, expanding=True))


def _role_settings(conn, role: str) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = :role AND d.datname = current_database()"
        ),
        {"role": role},
    ).scalars()
    return sorted(item for config in rows for item in config)


def test_the_apps_connection_takes_its_settings_from_the_role_and_sets_none(client):
    statement_ms = get_settings().db_statement_timeout_ms
    db.reset_engine()
    with db.session_scope(transaction=False) as session:
        rows = session.execute(SETTINGS_SQL).all()
        leftovers = session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
    assert sorted(tuple(row) for row in rows) == [
        ("TimeZone", "UTC", "database user"),
        ("statement_timeout", str(statement_ms), "database user"),
    ]
    assert leftovers == 0


def test_a_request_leaves_no_prepared_statement_on_its_connection(client):
    from tests.factories import auth, login, make_site, make_user

    site = make_site("Marketing")
    make_user("eddie", sites={site: "editor"})
    token = login(client, "eddie")["token"]
    assert client.http.get("/api/interactions", headers=auth(token)).status_code == 200
    with db.session_scope(transaction=False) as session:  # the same pooled connection
        assert session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
        assert session.execute(SESSION_SQL).scalar() == 0


def test_the_migration_sets_the_migrating_role_and_its_downgrade_resets_it(scratch):  # noqa: F811
    engine, config, _role = scratch
    command.upgrade(config, "0008")
    with engine.connect() as conn:
        user = conn.scalar(text("SELECT current_user"))
        assert _role_settings(conn, user) == []
    command.upgrade(config, "0011")
    statement_ms = get_settings().db_statement_timeout_ms
    with engine.connect() as conn:
        assert _role_settings(conn, user) == ["TimeZone=UTC", f"statement_timeout={statement_ms}"]
    command.downgrade(config, "0008")
    with engine.connect() as conn:
        assert _role_settings(conn, user) == []


def test_role_settings_command_sets_another_role(scratch, monkeypatch, capsys):  # noqa: F811
    engine, _config, role = scratch
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "4000")
    from chalicelib import config as settings_module

    settings_module.reset_settings()
    db.reset_engine()
    try:
        assert cli.main(["role-settings", "--role", role]) == 0
    finally:
        db.reset_engine()
    assert f"{role}: statement_timeout 4000 ms" in capsys.readouterr().out
    with engine.connect() as conn:
        assert _role_settings(conn, role) == ["TimeZone=UTC", "statement_timeout=4000"]
