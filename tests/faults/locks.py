"""Side connections for tests that hold locks while the app works (outside the app's small pool)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from chalicelib.config import normalise_database_url


@contextmanager
def side_connection() -> Iterator[Connection]:
    """A connection of its own, outside the app's small pool, straight to the server (past the
    pooler of a pooled run: a backend it ends is never its own)."""
    url = os.environ.get("TEST_DIRECT_DATABASE_URL") or os.environ["DATABASE_URL"]
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@contextmanager
def role_statement_timeout(statement_ms: int) -> Iterator[None]:
    """The role's statement timeout (db.role_settings) set to `statement_ms` in the test database
    for the block, on fresh connections (the app's engine and, pooled, the pooler's servers)."""
    from chalicelib import db
    from chalicelib.config import get_settings
    from tests import environment

    def apply(value: int) -> None:
        with side_connection() as conn:
            db.apply_role_settings(conn, statement_ms=value)
            conn.commit()
        environment.refresh_server_connections()
        db.reset_engine()

    apply(statement_ms)
    try:
        yield
    finally:
        apply(get_settings().db_statement_timeout_ms)


def wait_for_lock_waiters(count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with side_connection() as conn:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND application_name = 'interactions-api'"
                )
            )
        if waiting >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"expected {count} request(s) waiting on a lock")


def released_together(holder: Connection, *calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on threads until each of them waits on a lock `holder` holds, then let go
    (`holder` rolls back): their results, in order."""
    results: list[Any] = [None] * len(calls)
    threads = [
        threading.Thread(target=lambda i=i, call=call: results.__setitem__(i, call()))
        for i, call in enumerate(calls)
    ]
    for t in threads:
        t.start()
    wait_for_lock_waiters(len(calls))
    holder.rollback()
    for t in threads:
        t.join(30)
    return results
