"""Where the benchmark's PostgreSQL and Redis come from, and the environment the handlers see.

The database is a dedicated one (`bench_interactions`, or BENCH_DATABASE) on the server named by
DATABASE_URL, or on the embedded server when DATABASE_URL is unset; it is seeded once and reused.
Redis is REDIS_URL, or a throwaway embedded one.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from devtools import embedded

BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "bench_interactions")

# The benchmark measures speed, not the limiter: the limits are raised out of the way, but the rate
# limiter's Redis round trip still runs on every authenticated request.
UNLIMITED = str(10**9)

_configured: dict[str, str] = {}


def _server_urls() -> tuple[str, str, str]:
    """(admin URL, bench database URL, a description of the server)."""
    from sqlalchemy.engine import make_url

    from chalicelib.config import normalise_database_url

    if os.environ.get("DATABASE_URL"):
        url = make_url(normalise_database_url(os.environ["DATABASE_URL"]))
        admin = url.set(database="postgres").render_as_string(hide_password=False)
        bench = url.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
        return admin, bench, f"{url.host or 'unix socket'}:{url.port or 5432} (DATABASE_URL)"
    server = embedded.postgres_server()
    return (
        embedded.postgres_url(server, "postgres"),
        embedded.postgres_url(server, BENCH_DATABASE),
        "embedded (devtools/embedded.py, unix socket)",
    )


def configure() -> dict[str, str]:
    """Point this process (and the subprocesses it starts) at the benchmark services. Idempotent."""
    if _configured:
        return _configured
    admin, bench, where = _server_urls()
    embedded.ensure_database(admin, BENCH_DATABASE)
    redis_url = os.environ.get("REDIS_URL") or embedded.redis_url(
        embedded.redis_server("bench-redis", throwaway=True)
    )
    _configured.update(
        DATABASE_URL=bench,
        BENCH_ADMIN_DATABASE_URL=admin,
        BENCH_SERVER=where,
        REDIS_URL=redis_url,
        JWT_SECRET=os.environ.get("JWT_SECRET") or secrets.token_urlsafe(48),
        API_RATE_PER_MINUTE=UNLIMITED,
        SEARCH_RATE_PER_MINUTE=UNLIMITED,
        LOGIN_RATE_PER_MINUTE=UNLIMITED,
    )
    os.environ.update(_configured)
    for name in ("DB_SECRET_ARN", "JWT_SECRET_ARN", "JWT_PREVIOUS_SECRET", "JWT_PREVIOUS_SECRET_ARN"):
        os.environ.pop(name, None)
    return _configured


def subprocess_env(**extra: str) -> dict[str, Any]:
    """The environment for a child process (CLI commands, cold starts): this one's, configured."""
    env = dict(os.environ)
    env.update(configure())
    env.update(extra)
    return env
