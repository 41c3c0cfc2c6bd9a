"""The pg8000 path of chalicelib/driver.py: one round trip per statement (the unnamed statement,
parsed, bound and run in one batch; nothing named is left on the server), BEGIN sent with the first statement of a transaction, COMMIT in one, nothing for a
session without a transaction, errors that leave the connection usable and in step, and dead
pooled connections replaced without a ping. Round trips are counted at the socket (devtools/relay.py)."""

from __future__ import annotations

import logging
import os
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from chalicelib import driver
from devtools.relay import Relay
from tests import environment


@pytest.fixture
def relayed():
    """An engine set up like the app's (driver.install), through a relay."""
    url = make_url(os.environ["DATABASE_URL"])
    unix_sock = str(url.query.get("unix_sock") or "")
    relay = Relay(upstream_unix=unix_sock) if unix_sock else Relay(upstream=(url.host, url.port or 5432))
    relay.start()
    query = {k: v for k, v in url.query.items() if k != "unix_sock"}
    engine = create_engine(
        url.set(host="127.0.0.1", port=relay.port, query=query), pool_size=1, max_overflow=0
    )
    driver.install(engine)
    yield engine, relay
    engine.dispose()
    relay.stop()


def _trips(relay, work):
    with relay.counting() as counted:
        result = work()
    return counted["round_trips"], result


def test_a_statement_costs_one_round_trip_first_time_and_after(relayed):
    engine, relay = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # connects
        trips, value = _trips(relay, lambda: conn.execute(text("SELECT :a + 1"), {"a": 41}).scalar())
        assert (trips, value) == (1, 42)  # parsed, bound and run together
        trips, value = _trips(relay, lambda: conn.execute(text("SELECT :a + 1"), {"a": 1}).scalar())
        assert (trips, value) == (1, 2)
        conn.rollback()


def test_no_named_statement_is_left_on_the_server(relayed):
    engine, _ = relayed
    with engine.connect() as conn:
        for n in range(3):
            assert conn.execute(text(f"SELECT :a + {n}"), {"a": 1}).scalar() == 1 + n
        conn.execute(text("SELECT :a"), {"a": "x"})  # the same text again, another type
        assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
        conn.rollback()


def test_a_statement_returning_no_rows_has_no_columns(relayed):
    engine, _ = relayed
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE n (a int)"))
        result = conn.execute(text("INSERT INTO n VALUES (:a)"), {"a": 1})
        assert result.rowcount == 1 and not result.returns_rows
        assert conn.execute(text("SELECT a FROM n WHERE a > :a"), {"a": 5}).all() == []
        conn.rollback()


def test_begin_rides_with_the_first_statement_and_commit_is_one_round_trip(relayed):
    engine, relay = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        trips, _ = _trips(relay, lambda: conn.execute(text("SELECT :a"), {"a": 1}))
        assert trips == 1 and conn.connection.dbapi_connection._in_transaction
        trips, _ = _trips(relay, conn.commit)
        assert trips == 1 and not conn.connection.dbapi_connection._in_transaction


def test_an_autocommit_session_sends_neither_begin_nor_commit(relayed):
    engine, relay = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        dbapi = conn.connection.dbapi_connection
        dbapi.autocommit = True

        def read_and_commit():
            value = conn.execute(text("SELECT :a + 0"), {"a": 7}).scalar()
            conn.commit()
            return value

        trips, value = _trips(relay, read_and_commit)
        assert (trips, value) == (1, 7)
        assert not dbapi._in_transaction


def test_a_failed_statement_leaves_the_connection_in_step(relayed):
    engine, _ = relayed
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE t (id int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (:id)"), {"id": 1})
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO t VALUES (:id)"), {"id": 1})
        conn.rollback()
        with pytest.raises(ProgrammingError):
            conn.execute(text("SELEC :a"), {"a": 1})  # a parse error, sent with its Bind
        conn.rollback()
        assert conn.execute(text("SELECT :a * 2"), {"a": 21}).scalar() == 42


def test_a_value_that_cannot_be_sent_closes_the_connection_and_the_next_one_is_in_step(relayed, caplog):
    engine, _ = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        with pytest.raises(UnicodeEncodeError):
            # BEGIN and the Parse are already in the write buffer when the Bind fails to encode.
            conn.execute(text("SELECT :a"), {"a": "\ud800"})
        conn.rollback()

    with engine.connect() as conn:  # the pool's next connection: a fresh one, answering in step
        assert conn.execute(text("SELECT CAST(:a AS int) + 1"), {"a": 41}).scalar() == 42
        assert conn.execute(text("SELECT CAST(:b AS text)"), {"b": "x"}).scalar() == "x"
        conn.commit()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # closed once, quietly


def test_a_statement_whose_result_type_changed_runs_as_it_is_now(relayed):
    engine, _ = relayed
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE r (a int)"))
        conn.execute(text("INSERT INTO r VALUES (1)"))
        assert conn.execute(text("SELECT * FROM r WHERE a = :a"), {"a": 1}).all() == [(1,)]
        conn.execute(text("ALTER TABLE r ADD COLUMN b int"))
        assert conn.execute(text("SELECT * FROM r WHERE a = :a"), {"a": 1}).all() == [(1, None)]
        conn.rollback()


@pytest.mark.skipif(
    environment.pooled(),
    reason="behind a pooler the client's connection ends at the pooler (tests/test_pooler.py)",
)
def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_ping(relayed):
    engine, relay = relayed
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.commit()
    admin = create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+pg8000://", 1))
    with admin.begin() as side:
        side.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(0.2)

    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_a_healthy_idle_connection_is_reused_without_a_round_trip(relayed):
    engine, relay = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
    with relay.counting() as counted, engine.connect() as conn:
        pass
    assert counted == {"round_trips": 0, "connections": 0}


def test_a_long_idle_connection_is_pinged_once(relayed, monkeypatch):
    engine, relay = relayed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
    monkeypatch.setattr(driver, "IDLE_PING_SECONDS", 0.0)
    with relay.counting() as counted, engine.connect():
        pass
    assert counted == {"round_trips": 1, "connections": 0}
