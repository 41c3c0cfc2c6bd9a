"""The pg8000 path of chalicelib/driver.py: one round trip per statement (prepared once per
connection), BEGIN sent with the first statement of a transaction, COMMIT in one, nothing for a
session without a transaction, errors that leave the connection usable and in step, and dead
pooled connections replaced without a ping. Round trips are counted at the socket (devtools/relay.py)."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from chalicelib import db, driver
from devtools.relay import Relay


@pytest.fixture
def relayed():
    """An engine set up like the app's (driver.install, the session settings), through a relay."""
    url = make_url(os.environ["DATABASE_URL"])
    unix_sock = url.query.get("unix_sock")
    relay = Relay(upstream_unix=unix_sock) if unix_sock else Relay(upstream=(url.host, url.port or 5432))
    relay.start()
    query = {k: v for k, v in url.query.items() if k != "unix_sock"}
    engine = create_engine(
        url.set(host="127.0.0.1", port=relay.port, query=query), pool_size=1, max_overflow=0
    )
    driver.install(engine)

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _settings(dbapi_connection, _record):
        dbapi_connection.execute_simple(db.session_settings(5000))

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
        assert (trips, value) == (1, 42)  # prepared and run together
        trips, value = _trips(relay, lambda: conn.execute(text("SELECT :a + 1"), {"a": 1}).scalar())
        assert (trips, value) == (1, 2)
        assert driver.prepared_count(conn.connection.dbapi_connection) == 1
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


def test_a_statement_whose_result_type_changed_is_prepared_again(relayed):
    engine, _ = relayed
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE r (a int)"))
        conn.execute(text("INSERT INTO r VALUES (1)"))
        assert conn.execute(text("SELECT * FROM r WHERE a = :a"), {"a": 1}).all() == [(1,)]
        conn.execute(text("ALTER TABLE r ADD COLUMN b int"))
        with pytest.raises(Exception, match="cached plan"):
            conn.execute(text("SELECT * FROM r WHERE a = :a"), {"a": 1})
        conn.rollback()
        conn.execute(text("CREATE TEMPORARY TABLE r (a int, b int)"))
        conn.execute(text("INSERT INTO r VALUES (1, 2)"))
        assert conn.execute(text("SELECT * FROM r WHERE a = :a"), {"a": 1}).all() == [(1, 2)]


def test_the_prepared_statements_of_a_connection_are_bounded(relayed, monkeypatch):
    monkeypatch.setattr(driver, "MAX_PREPARED", 3)
    engine, _ = relayed
    with engine.connect() as conn:
        for n in range(6):
            assert conn.execute(text(f"SELECT :a + {n}"), {"a": 1}).scalar() == 1 + n
        dbapi = conn.connection.dbapi_connection
        assert driver.prepared_count(dbapi) == 3
        # The evicted ones are closed on the server, with the next statement.
        names = conn.execute(
            text("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE :p"), {"p": "ia%"}
        ).scalar()
        assert names == 4  # three cached, plus this one


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


def test_the_apps_connections_plan_every_prepared_statement_for_its_values():
    """Prepared statements must never fall back to a generic plan: a search term's trigram plan
    depends on the term (chalicelib/db.py sets plan_cache_mode on every connection)."""
    from chalicelib.db import session_scope

    with session_scope(transaction=False) as session:
        assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert session.execute(text("SHOW TimeZone")).scalar() == "UTC"
