"""Where the tests' PostgreSQL and Redis come from (see conftest.py).

With TEST_POOLER=1 (`make test-pooled`) the app reaches the test database through PgBouncer in
transaction mode (devtools/pooler.py), started here on a free port with its files in the session's
temp folder and stopped at the end: DATABASE_URL names the pooler, TEST_DIRECT_DATABASE_URL the
server itself (the migrations take a session-level advisory lock, which a pooler cannot keep).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devtools import embedded

# Per process, so that several test runs on one machine do not trample each other.
TEST_DATABASE = f"interactions_test_{os.getpid()}"
TEST_JWT_SECRET = "test-signing-key-" + "x" * 40
# The issuer and audience match the dev stage, whose variables the test client applies.
ROOT_ENV = {
    "JWT_SECRET": TEST_JWT_SECRET,
    "JWT_ISSUER": "interactions-dev",
    "JWT_AUDIENCE": "interactions-api-dev",
    "CORS_ALLOW_ORIGIN": "https://app.example.com",
    # moto needs credentials and a region before anything creates a boto3 client.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    # Invitations are written as .eml files to a directory of this run (tests/mailbox.py reads them);
    # the sender and the link are the dev stage's, which the test client lays over these anyway.
    "MAIL_FROM": "Interactions <invitations@dev.example.com>",
    "INVITE_URL": "https://app.dev.example.com/invitations/accept?token={token}",
}
MAIL_DIRECTORY = os.path.join(tempfile.gettempdir(), f"interactions-test-mail-{os.getpid()}")
_configured: dict[str, str] = {}
_pooler: list[Any] = []  # the PgBouncer of a pooled run


def pooled() -> bool:
    return os.environ.get("TEST_POOLER", "").strip() in ("1", "true", "yes")


def _test_database_url(base: str) -> tuple[str, str]:
    """(admin URL, test database URL) on the same server as `base`."""
    from chalicelib.config import normalise_database_url

    url = make_url(normalise_database_url(base))
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    test = url.set(database=TEST_DATABASE).render_as_string(hide_password=False)
    return admin, test


def _test_redis_url(base: str) -> str:
    if base.startswith("unix://"):
        return base
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/15", parts.query, parts.fragment))


def configure() -> dict[str, str]:
    """Point the process at the test services. Idempotent."""
    if _configured:
        return _configured
    if os.environ.get("DATABASE_URL"):
        admin, test = _test_database_url(os.environ["DATABASE_URL"])
    else:
        server = embedded.postgres_server()
        admin = embedded.postgres_url(server, "postgres")
        test = embedded.postgres_url(server, TEST_DATABASE)
    embedded.ensure_database(admin, TEST_DATABASE, recreate=True)
    if os.environ.get("REDIS_URL"):
        redis_url = _test_redis_url(os.environ["REDIS_URL"])
    else:
        redis_url = embedded.redis_url(embedded.redis_server(f"test-redis-{os.getpid()}", throwaway=True))
    direct = test
    if pooled():
        test = _start_pooler(test)
    _configured.update(
        ROOT_ENV,
        MAIL_DELIVERY=f"directory:{MAIL_DIRECTORY}",
        DATABASE_URL=test,
        REDIS_URL=redis_url,
        TEST_ADMIN_DATABASE_URL=admin,
        TEST_DIRECT_DATABASE_URL=direct,
    )
    os.environ.update(_configured)
    for name in ("DB_SECRET_ARN", "JWT_SECRET_ARN", "JWT_PREVIOUS_SECRET", "JWT_PREVIOUS_SECRET_ARN"):
        os.environ.pop(name, None)
    return _configured


def _start_pooler(direct_url: str) -> str:
    """PgBouncer in front of the test database's server; the test database's URL through it."""
    import atexit

    from devtools.pooler import Pooler

    url = make_url(direct_url)
    unix_sock = url.query.get("unix_sock")
    pooler = Pooler(
        directory=Path(tempfile.gettempdir()) / "pgbouncer",
        upstream_unix=unix_sock if isinstance(unix_sock, str) else None,
        upstream=None if unix_sock else (url.host or "127.0.0.1", url.port or 5432),
        user=url.username or "postgres",
        password=url.password or "",
        pool_size=20,
    ).start()
    _pooler.append(pooler)
    atexit.register(stop_pooler)
    return pooler.url(TEST_DATABASE)


def pooler() -> Any:
    """The running PgBouncer of a pooled run (None otherwise)."""
    return _pooler[0] if _pooler else None


def refresh_server_connections() -> None:
    """New role settings reach new server connections only: with a pooler, have it replace its
    server connections as they come back (PgBouncer's RECONNECT)."""
    if _pooler:
        _pooler[0].admin("RECONNECT")


def stop_pooler() -> None:
    while _pooler:
        pooler = _pooler.pop()
        pooler.stop()
        pooler.remove_files()


def drop_database() -> None:
    if _engine is not None:
        _engine.dispose()
    stop_pooler()
    engine = create_engine(_configured["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
    engine.dispose()


def migrate() -> None:
    from chalicelib import cli, config

    os.environ["DATABASE_URL"] = _configured["TEST_DIRECT_DATABASE_URL"]
    config.reset_settings()
    try:
        assert cli.main(["migrate"]) == 0
    finally:
        os.environ["DATABASE_URL"] = _configured["DATABASE_URL"]
        config.reset_settings()


_engine = None


def truncate_all() -> None:
    global _engine
    if _engine is None:
        from chalicelib.config import normalise_database_url

        # Straight to the server: a pooled run kills and restarts its pooler.
        _engine = create_engine(normalise_database_url(_configured["TEST_DIRECT_DATABASE_URL"]))
    from chalicelib.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with _engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
