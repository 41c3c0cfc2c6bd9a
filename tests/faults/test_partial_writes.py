"""A failure in the middle of a write leaves nothing behind: the request's one transaction is rolled
back, the client gets 503 (the request had no effect) and a retry with the same Idempotency-Key
creates the record exactly once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, func, select, text

from chalicelib import db
from chalicelib.models import IdempotencyKey, Interaction
from tests import environment
from tests.faults.conftest import FAST_SECONDS
from tests.faults.locks import role_statement_timeout, side_connection, wait_for_lock_waiters
from tests.interactions.helpers import VALID, create, make_world, send, stored

pytestmark = pytest.mark.faults
# Outside a transaction a pooler lends each statement whichever server connection is free: the one
# ended before an update is not the one the update runs on, and nothing fails (tests/test_pooler.py
# ends the server connection of a transaction instead).
direct_only = pytest.mark.skipif(
    environment.pooled(), reason="a pooler hides a backend ended between statements"
)

PATH = "/api/interactions"


@pytest.fixture
def world():
    return make_world()


def _count(model) -> int:
    with side_connection() as conn:
        return conn.scalar(select(func.count()).select_from(model))


class FailAfter:
    """Run `action` right after (or, `before`, right before) the first statement on the app's engine that writes what `prefix`
    says (at its start, or in a data-modifying WITH: a keyed create is one)."""

    def __init__(self, prefix: str, action, *, before: bool = False) -> None:
        self.prefix, self.action, self.fired = prefix, action, False
        self.event = "before_cursor_execute" if before else "after_cursor_execute"

    def __call__(self, conn, cursor, statement, parameters, context, executemany=False):
        text = statement.lstrip().upper()
        if not self.fired and (
            text.startswith(self.prefix) or (text.startswith("WITH") and self.prefix in text)
        ):
            self.fired = True
            self.action(conn)

    def __enter__(self):
        event.listen(db.get_engine(), self.event, self)
        return self

    def __exit__(self, *exc):
        event.remove(db.get_engine(), self.event, self)


def _terminate_own_backend(conn) -> None:
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with side_connection() as side:
        side.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        side.commit()


def test_the_database_vanishing_after_the_insert_leaves_no_row_and_no_key(client, world, pg_proxy):
    with FailAfter("INSERT INTO INTERACTIONS", lambda _conn: pg_proxy.close()) as hook:
        started = time.perf_counter()
        response = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": "k-1"})
        elapsed = time.perf_counter() - started
    assert hook.fired
    assert response.status_code == 503, response.json_body
    assert elapsed < FAST_SECONDS
    pg_proxy.open()

    assert _count(Interaction) == 0
    assert _count(IdempotencyKey) == 0

    retry = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": "k-1"})
    again = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": "k-1"})
    assert retry.status_code == again.status_code == 201
    assert again.json_body == retry.json_body
    assert _count(Interaction) == 1


def test_the_connection_killed_after_the_insert_leaves_no_row(client, world):
    with FailAfter("INSERT INTO INTERACTIONS", _terminate_own_backend) as hook:
        response = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": "k-1"})
    assert hook.fired
    assert response.status_code == 503, response.json_body
    assert _count(Interaction) == 0
    assert _count(IdempotencyKey) == 0

    assert send(client, "POST", PATH, world.token("editor"), VALID).status_code == 201


# An update or a delete is one statement (the write and its checks together), run on its own: it
# has happened entirely or not at all. A connection lost before it reaches the database is a 503
# with nothing changed; one lost right after it answered does not undo it, and the client is told.


@direct_only
def test_the_connection_killed_before_the_update_leaves_the_record_unchanged(client, world):
    row = create(client, world.token("editor"))

    with FailAfter("UPDATE INTERACTIONS", _terminate_own_backend, before=True) as hook:
        response = send(client, "PUT", f"{PATH}/{row['id']}", world.token("editor"), {"title": "Changed"})
    assert hook.fired
    assert response.status_code == 503

    assert stored(row["id"]) == row


def test_the_connection_killed_right_after_the_update_keeps_the_acknowledged_change(client, world):
    row = create(client, world.token("editor"))

    with FailAfter("UPDATE INTERACTIONS", _terminate_own_backend) as hook:
        response = send(client, "PUT", f"{PATH}/{row['id']}", world.token("editor"), {"title": "Changed"})
    assert hook.fired
    assert response.status_code == 200
    assert stored(row["id"]) == response.json_body["data"]["interaction"]


@direct_only
def test_the_connection_killed_before_the_delete_keeps_the_record(client, world):
    row = create(client, world.token("editor"))

    with FailAfter("DELETE FROM INTERACTIONS", _terminate_own_backend, before=True) as hook:
        response = send(client, "DELETE", f"{PATH}/{row['id']}", world.token("editor"))
    assert hook.fired
    assert response.status_code == 503

    assert stored(row["id"]) == row


def test_a_statement_timeout_is_503_and_writes_nothing(client, world):
    """The timeout is the role's (no connection sets one): with 300 ms on the role, a write stuck
    behind a lock is cancelled by PostgreSQL, also through a pooler (`make test-pooled`)."""
    with role_statement_timeout(300):
        with side_connection() as blocker:
            blocker.execute(text("LOCK TABLE interactions IN SHARE MODE"))
            started = time.monotonic()
            response = send(client, "POST", PATH, world.token("editor"), VALID, **{"Idempotency-Key": "k-1"})
            elapsed = time.monotonic() - started
            blocker.rollback()
    assert response.status_code == 503, response.json_body
    assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert elapsed < FAST_SECONDS  # PostgreSQL's 300 ms, not the 5 s default nor the socket's
    assert _count(Interaction) == 0
    assert _count(IdempotencyKey) == 0


def test_a_create_waiting_on_a_lock_finishes_when_it_is_released(client, world):
    """A slow moment is not a failure: below the statement timeout the request just waits."""
    import threading

    from devtools.gateway import Gateway

    gateway = Gateway()
    result = {}
    with side_connection() as blocker:
        blocker.execute(text("LOCK TABLE interactions IN SHARE MODE"))
        thread = threading.Thread(
            target=lambda: result.setdefault("r", gateway.request("POST", PATH, world.token("editor"), VALID))
        )
        thread.start()
        wait_for_lock_waiters(1)
        blocker.rollback()
        thread.join(10)

    assert result["r"].status == 201
    assert _count(Interaction) == 1
