"""Where the tests' PostgreSQL and Redis come from (see conftest.py)."""

from __future__ import annotations

import os
import tempfile
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
    _configured.update(
        ROOT_ENV,
        MAIL_DELIVERY=f"directory:{MAIL_DIRECTORY}",
        DATABASE_URL=test,
        REDIS_URL=redis_url,
        TEST_ADMIN_DATABASE_URL=admin,
    )
    os.environ.update(_configured)
    for name in ("DB_SECRET_ARN", "JWT_SECRET_ARN", "JWT_PREVIOUS_SECRET", "JWT_PREVIOUS_SECRET_ARN"):
        os.environ.pop(name, None)
    return _configured


def drop_database() -> None:
    if _engine is not None:
        _engine.dispose()
    engine = create_engine(_configured["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
    engine.dispose()


def migrate() -> None:
    from chalicelib import cli

    assert cli.main(["migrate"]) == 0


_engine = None


def truncate_all() -> None:
    global _engine
    if _engine is None:
        from chalicelib.config import normalise_database_url

        _engine = create_engine(normalise_database_url(_configured["DATABASE_URL"]))
    from chalicelib.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with _engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
