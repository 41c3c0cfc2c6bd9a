"""Side connections for tests that hold locks while the app works (outside the app's small pool)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from chalicelib.config import normalise_database_url


@contextmanager
def side_connection() -> Iterator[Connection]:
    """A connection of its own, outside the app's small pool."""
    engine = create_engine(normalise_database_url(os.environ["DATABASE_URL"]), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


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
