"""pg8000 under SQLAlchemy, tuned for round trips: deployed, every exchange with RDS Proxy costs about
a millisecond, far more than the CPU of a request.

pg8000 runs an unnamed statement in three round trips (Parse, then Describe, then Bind/Execute, each
followed by a Sync it waits on), opens a transaction with a round trip of its own and commits in
three. Here instead, for the pinned pg8000 1.31 (its protocol methods are used directly):

- every parameterised statement is sent as the *unnamed* statement, Parse, Bind, Describe (of the
  portal, for the result's columns), Execute and one Sync in one batch: one round trip, and nothing
  left on the server connection afterwards. No named statement is ever prepared: a transaction
  pooler (PgBouncer before 1.21) cannot follow one from connection to connection, and RDS Proxy pins
  a client to its server connection for one. An unnamed statement is planned for its values every
  time (a rare search term keeps its trigram plan);
- `BEGIN` travels with the first statement of a transaction, and COMMIT/ROLLBACK are one simple
  query each — nothing at all when no transaction is open (reads run in autocommit);
- no ping before use: a connection PostgreSQL or a proxy closed while idle has something to read
  (an error, or end of file), which a zero-timeout `select()` sees for free; a connection idle for
  longer than `IDLE_PING_SECONDS` (silently dropped by a NAT or firewall, say) gets a real ping with
  a short timeout. Either way a dead connection is replaced before the request uses it.
"""

from __future__ import annotations

import select
import time
from typing import Any, cast

from pg8000 import legacy
from pg8000.converters import make_params
from pg8000.core import DESCRIBE, NULL_BYTE, PORTAL, SYNC_MSG, Context, _flush, _write
from pg8000.dbapi import IntegrityError, ProgrammingError
from pg8000.exceptions import DatabaseError, InterfaceError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

IDLE_PING_SECONDS = 60.0
PING_TIMEOUT_S = 2.0
_BEGIN = "begin transaction"
UNNAMED = NULL_BYTE  # the unnamed statement, and the unnamed portal
_DESCRIBE_PORTAL = PORTAL + UNNAMED


def _needs_begin(conn: Any) -> bool:
    return not conn.autocommit and not conn._in_transaction


def _drain(conn: Any, context: Context, first: Exception | None) -> Exception | None:
    """Read one batch's answer up to ReadyForQuery; remember its error rather than raising it, so
    that the answers of the batches sent with it are read too (the protocol stays in step)."""
    try:
        conn.handle_messages(context)
    except (DatabaseError, InterfaceError) as exc:
        if isinstance(exc, InterfaceError) and "network error" in str(exc):
            raise  # the connection is gone: nothing more will come
        return first or exc
    return first


def _dbapi_error(exc: Exception) -> Exception:
    """The DB-API class pg8000's cursor would raise for a server error."""
    msg = exc.args[0] if exc.args else None
    if isinstance(exc, DatabaseError) and type(exc) is DatabaseError:
        code = msg.get("C") if isinstance(msg, dict) else None
        error_class = (
            InterfaceError if code == "28000" else IntegrityError if code == "23505" else ProgrammingError
        )
        return cast(Exception, error_class(msg))
    return exc


def _finish(cursor: Any, context: Context) -> None:
    cursor._context = context
    cursor._row_iter = iter([] if context.rows is None else context.rows)
    cursor._input_oids = ()
    cursor.input_types = []


def _execute_simple(cursor: Any, statement: str) -> Exception | None:
    conn = cursor._c
    begin = _needs_begin(conn)
    if begin:
        conn.send_QUERY(_BEGIN)
    conn.send_QUERY(statement)
    _flush(conn._sock)
    error = _drain(conn, Context(_BEGIN), None) if begin else None
    context = Context(statement)
    error = _drain(conn, context, error)
    if error is None:
        _finish(cursor, context)
    return error


def _execute_unnamed(cursor: Any, statement: str, parameters: Any) -> Exception | None:
    conn = cursor._c
    sql, values = legacy.convert_paramstyle(cursor.paramstyle, statement, parameters)
    begin = _needs_begin(conn)
    # One batch: [BEGIN] Parse + Bind + Describe(portal) + Execute + Sync. With one Sync, a
    # transaction pooler keeps the whole exchange on one server connection even outside a
    # transaction (it may lend another one after each Sync).
    if begin:
        conn.send_QUERY(_BEGIN)
    conn.send_PARSE(UNNAMED, sql, ())
    conn.send_BIND(UNNAMED, make_params(conn.py_types, values))
    conn._send_message(DESCRIBE, _DESCRIBE_PORTAL)
    conn.send_EXECUTE()
    _write(conn._sock, SYNC_MSG)
    _flush(conn._sock)

    error = _drain(conn, Context(_BEGIN), None) if begin else None
    context = Context(sql)  # the portal's RowDescription fills in its columns
    error = _drain(conn, context, error)
    if error is None:
        _finish(cursor, context)
    return error


def do_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
    """SQLAlchemy's `Dialect.do_execute` for pg8000: one round trip per statement. A server error
    is raised once the whole batch is answered (the connection stays in step); any other failure
    closes the connection."""
    try:
        if parameters:
            error = _execute_unnamed(cursor, statement, parameters)
        else:
            error = _execute_simple(cursor, statement)
    except AttributeError:
        if cursor._c is None or cursor._c._sock is None:
            raise InterfaceError("connection is closed") from None
        _abandon(cursor._c)
        raise
    except OSError as exc:
        # pg8000 lets a reset on the first read of an answer through unwrapped: as a DB-API error
        # SQLAlchemy sees the disconnect (and discards the connection).
        raise InterfaceError("network error") from exc
    except InterfaceError:
        raise  # the connection is gone (pg8000's "network error"): SQLAlchemy discards it
    except Exception:
        # A value that cannot be sent (its text not encodable, say) or an answer that cannot be
        # read: part of the batch is left in the write buffer, unsent, or on the socket, unread,
        # and the connection's next exchange would read this one's answers. It is closed (nothing
        # was committed; the pool opens another); the error stands.
        _abandon(cursor._c)
        raise
    if error is not None:
        raise _dbapi_error(error)


def _abandon(conn: Any) -> None:
    """Close a connection whose exchange cannot be completed: what is buffered goes out with the
    Terminate (whole messages only; the server ends the session, rolling back what it began)."""
    try:
        conn.close()
    except Exception:  # already unusable: closed either way
        pass


def do_close(dbapi_connection: Any) -> None:
    """Close a connection unless it is closed already (`_abandon`, or pg8000 after a failure)."""
    if dbapi_connection._usock is not None:
        dbapi_connection.close()


def do_execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
    do_execute(cursor, statement, (), context)


def do_commit(dbapi_connection: Any) -> None:
    """COMMIT in one round trip, and none when no transaction is open (autocommit reads)."""
    if dbapi_connection._in_transaction:
        try:
            dbapi_connection.execute_simple("commit")
        except OSError as exc:
            raise InterfaceError("network error") from exc


def do_rollback(dbapi_connection: Any) -> None:
    if dbapi_connection._sock is not None and dbapi_connection._in_transaction:
        try:
            dbapi_connection.execute_simple("rollback")
        except OSError as exc:
            raise InterfaceError("network error") from exc


def _has_pending_input(dbapi_connection: Any) -> bool:
    sock = dbapi_connection._usock
    pending = getattr(sock, "pending", None)  # an SSL socket may hold decrypted bytes already
    if pending is not None and pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _ping(dbapi_connection: Any) -> bool:
    sock = dbapi_connection._usock
    timeout = sock.gettimeout()
    sock.settimeout(PING_TIMEOUT_S)
    try:
        dbapi_connection.execute_simple(";")
        return True
    except Exception:
        return False
    finally:
        try:
            sock.settimeout(timeout)
        except OSError:
            pass


def alive(dbapi_connection: Any, idle_seconds: float) -> bool:
    """Whether a pooled connection can be used: nothing unexpected to read (a connection the server
    or a proxy closed has an error or end of file waiting), and a ping answered after long idling."""
    if dbapi_connection._sock is None:
        return False
    try:
        if _has_pending_input(dbapi_connection):
            return False
    except (OSError, ValueError):
        return False
    if idle_seconds >= IDLE_PING_SECONDS:
        return _ping(dbapi_connection)
    return True


def install(engine: Engine) -> None:
    """Route the engine's statements through this module and check connections at checkout."""
    dialect = engine.dialect
    dialect.do_execute = do_execute  # type: ignore[method-assign]  # instance-level driver hooks
    dialect.do_execute_no_params = do_execute_no_params  # type: ignore[method-assign]  # as above
    dialect.do_commit = do_commit  # type: ignore[method-assign]  # as above
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]  # as above
    dialect.do_close = do_close  # type: ignore[method-assign]  # as above

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("checked_in", time.monotonic())
        if not alive(dbapi_connection, idle):
            # The pool throws this connection away and opens another (SQLAlchemy's documented
            # "pessimistic" disconnect handling, without a round trip when the connection is fine).
            raise DisconnectionError("the pooled connection was closed while idle")
        dbapi_connection.autocommit = False  # a read session switches it on (db.session_scope)

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()
