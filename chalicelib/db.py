"""The database engine (one per Lambda container) and the per-request session.

A Lambda container serves one request at a time, so the pool is tiny. Statements go through
`chalicelib.driver` (unnamed, one round trip each; connections PostgreSQL or a pooler closed while
the container slept are replaced without a ping). A connection sends no `SET`: its settings come
from the database role (`role_settings`, applied by the migrations), so that a transaction pooler
(RDS Proxy, PgBouncer) can share server connections between containers. A read session runs in autocommit
(no BEGIN, no COMMIT); a write session is one transaction. Every failure to reach the database,
every statement that runs past `statement_timeout`, and a pool with no free connection in time
become a 503 with nothing written.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from pg8000.exceptions import InterfaceError as DriverInterfaceError
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from chalicelib import driver
from chalicelib.config import get_settings
from chalicelib.errors import ServiceUnavailable

log = logging.getLogger(__name__)

_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None
_lock = threading.Lock()

POOL_TIMEOUT_S = 2
TIMESTAMPTZ_OID = 1184

# SQLSTATEs that mean "the database could not do it right now", not "your request is wrong".
UNAVAILABLE_STATES = {
    "57014",  # query_canceled (statement_timeout)
    "57P01",
    "57P02",
    "57P03",  # admin / crash shutdown, cannot connect now
    "53300",  # too_many_connections
    "53400",  # configuration_limit_exceeded
    "55P03",  # lock_not_available
    "40001",
    "40P01",  # serialization failure, deadlock: safe to retry
    "28P01",
    "28000",  # credentials refused (a rotation in progress)
}


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 error wrapped by SQLAlchemy, if there is one."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict):
        return args[0].get("C")
    return None


def refused_credentials(exc: BaseException | None) -> bool:
    """PostgreSQL refused the login (28P01 password, 28000 role or pg_hba). pg8000 raises that as
    ProgrammingError or InterfaceError, and sometimes hides it behind the "network error" of
    closing the socket the server had already closed: look down the exception chain."""
    for _ in range(5):
        if exc is None:
            return False
        if sqlstate(exc) in ("28P01", "28000"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (InterfaceError, OperationalError)) and sqlstate(exc) is None:
        return True  # socket-level failure: refused, reset, timed out
    state = sqlstate(exc)
    return state is not None and (state in UNAVAILABLE_STATES or state.startswith("08"))


def _connect_args(settings: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout": settings.db_connect_timeout_s, "application_name": "interactions-api"}
    # DB_TLS=disable is no TLS at all: pg8000's default (None) would build an SSL context on every
    # connect (~20 ms loading the CA store) and send an SSLRequest first (one more round trip).
    ssl_context = settings.db_ssl_context()
    args["ssl_context"] = ssl_context if ssl_context is not None else False
    return args


def read_timestamptz(text: str) -> Any:
    """A timestamptz as PostgreSQL writes it, read by the C parser. pg8000 reads every one with
    strptime, the biggest CPU cost of reading a page of rows (three timestamps a row); what
    fromisoformat does not take (infinity, BC dates) still goes to pg8000's own parser."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        from pg8000.converters import timestamptz_in

        return timestamptz_in(text)


def role_settings(statement_ms: int) -> dict[str, str]:
    """The settings every connection of the API needs, kept on its database role (in its database),
    not set by the connection: a transaction pooler lends a server connection to many clients, so
    a session's `SET` would leak to the next client and makes RDS Proxy pin the client to it."""
    return {"statement_timeout": str(int(statement_ms)), "TimeZone": "UTC"}


def apply_role_settings(connection: Any, *, statement_ms: int, role: str | None = None) -> None:
    """`ALTER ROLE <role> IN DATABASE <this one> SET ...` for `role_settings` (the connecting role
    by default). New connections start with them; open ones keep what they had."""
    from sqlalchemy import text

    preparer = connection.dialect.identifier_preparer
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    target = "CURRENT_USER" if role is None else preparer.quote_identifier(role)
    for name, value in role_settings(statement_ms).items():
        connection.exec_driver_sql(
            f"ALTER ROLE {target} IN DATABASE {preparer.quote_identifier(database)} SET {name} = '{value}'"
        )


def tune_driver_connection(dbapi_connection: Any) -> None:
    """Driver settings for every connection (the benchmark applies them to its raw one too)."""
    dbapi_connection.register_in_adapter(TIMESTAMPTZ_OID, read_timestamptz)


def remember_converted_statements() -> None:
    """pg8000 rewrites a statement's `%s` placeholders into `$n` by scanning its text character by
    character in Python, on every execution: about 0.3 ms of CPU for one list query, the largest
    single cost of a request. SQLAlchemy sends the same few statement texts again and again, so the
    rewritten text is remembered. For the `format` style the result depends on the text alone and
    the values pass through unchanged (pg8000 1.31, pinned); other styles are left alone."""
    import pg8000.legacy as legacy

    original = legacy.convert_paramstyle
    if getattr(original, "remembers", False):
        return
    converted: dict[str, str] = {}

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style != "format":
            return cast(tuple[str, Any], original(style, query, args))
        statement = converted.get(query)
        if statement is None:
            statement, args = original(style, query, args)
            if len(converted) < 1024:  # bounded: texts that vary (IN lists) are not kept forever
                converted[query] = statement
        return statement, args

    convert_paramstyle.remembers = True  # type: ignore[attr-defined]  # a marker on the wrapper itself
    legacy.convert_paramstyle = convert_paramstyle


def _build_engine() -> Engine:
    settings = get_settings()
    remember_converted_statements()
    # With DB_SECRET_ARN the engine is built without the secret (init must not need Secrets
    # Manager); every connect takes host, database and credentials from the cached secret.
    engine = create_engine(
        "postgresql+pg8000://" if settings.uses_db_secret else settings.resolved_database_url(),
        pool_size=1,
        max_overflow=2,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT_S,
        # Connecting (TCP, TLS, authentication) gets a short deadline of its own, so an
        # unreachable database is a 503 within db_connect_timeout_s rather than a hung request.
        connect_args=_connect_args(settings),
    )
    driver.install(engine)

    # Once connected, reads wait just above the statement timeout, so that a statement
    # PostgreSQL cancels is reported by PostgreSQL, not by the socket.
    read_timeout = settings.db_read_timeout_s

    @event.listens_for(engine, "connect")
    def _driver_defaults(dbapi_connection: Any, _record: Any) -> None:
        # Nothing is sent: the statement timeout and the time zone come with the database role
        # (role_settings), so a connection carries no state of its own and a pooler may share it.
        tune_driver_connection(dbapi_connection)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        if settings.uses_proxy_iam:
            # RDS Proxy's IAM authentication: the password is a token signed with the function's
            # own credentials (no call to AWS), good for 15 minutes and needed only to connect.
            cparams["password"] = iam_token(settings)
        if settings.uses_db_secret:
            connection = _connect_with_fresh_secret(dialect, cargs, cparams)
        else:
            connection = dialect.dbapi.connect(*cargs, **cparams)
        # The read timeout from the start: SQLAlchemy's first queries on a container's first
        # connection (the server's version...) run before any "connect" listener, and behind a
        # pooler a query may wait its turn for a server connection well past the connect timeout.
        sock = getattr(connection, "_usock", None)  # pg8000's socket (pinned version)
        if sock is not None:
            sock.settimeout(read_timeout)
        return connection

    def _connect_with_fresh_secret(dialect: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        # SQLAlchemy hands each connect a fresh copy of the engine's parameters: take the
        # credentials from the cached secret (no fetch), so a refresh holds for later connects.
        # The secret is fetched on the first connect, not when the engine is built at init.
        cparams.update(_secret_parameters(dialect, settings.resolved_database_url()))
        try:
            return dialect.dbapi.connect(*cargs, **cparams)
        except dialect.dbapi.Error as exc:
            if not refused_credentials(exc):
                raise
            # The secret was rotated: fetch it again and retry once with the new password.
            log.warning("database refused the cached credentials; fetching the secret again")
            cparams.update(_secret_parameters(dialect, settings.resolved_database_url(refresh=True)))
            return dialect.dbapi.connect(*cargs, **cparams)

    return engine


_IAM_TOKEN_SECONDS = 600  # reused for 10 minutes of its 15
_iam_token: dict[str, Any] = {}


def iam_token(settings: Any) -> str:
    """An IAM authentication token for DB_PROXY as DB_PROXY_USER (`rds.generate_db_auth_token`:
    signed locally with the Lambda's credentials), kept for 10 minutes. boto3 is imported here,
    on the first connect, not at init."""
    host, port = settings.proxy_address()
    key = (host, port, settings.db_proxy_user)
    cached = _iam_token.get("value")
    if cached is not None and _iam_token.get("key") == key and time.monotonic() < _iam_token["until"]:
        return str(cached)
    import boto3  # type: ignore[import-untyped]  # boto3 ships no types; lazy: cold start
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]  # as above

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        token = boto3.client("rds", region_name=region).generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=settings.db_proxy_user, Region=region
        )
    except BotoCoreError as exc:
        # No credentials or no region to sign with: the database cannot be reached, a 503 (as a
        # driver error, which SQLAlchemy wraps like any failed connect), the cause in the log.
        log.error("cannot sign an IAM authentication token for DB_PROXY: %s", exc)
        raise DriverInterfaceError(f"cannot sign an IAM authentication token: {exc}") from exc
    _iam_token.update(key=key, value=token, until=time.monotonic() + _IAM_TOKEN_SECONDS)
    return str(token)


def _secret_parameters(dialect: Any, url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    _args, params = dialect.create_connect_args(make_url(url))
    return dict(params)


def get_engine() -> Engine:
    global _engine, _sessionmaker
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = _build_engine()
                _sessionmaker = sessionmaker(_engine, class_=RequestSession, expire_on_commit=False)
                event.listen(_sessionmaker, "after_begin", _apply_autocommit)
    return _engine


def close_connections() -> None:
    """Close every pooled connection, keeping the engine (a snapshot must hold no socket)."""
    if _engine is not None:
        _engine.dispose(close=True)


def reset_engine() -> None:
    """Drop the engine (tests point the app at another database)."""
    global _engine, _sessionmaker
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _sessionmaker = None


DISCONNECTED_STATES = {"57P01", "57P02", "57P03"}  # the server ended the connection


def _disconnected(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    return state is not None and (state in DISCONNECTED_STATES or state.startswith("08"))


class RequestSession(Session):
    """A session whose first statement is tried again, once, on a fresh connection when the pooled
    one turns out to be dead as it is used (closed by the server or a proxy a moment before: the
    free check at checkout saw nothing yet). Nothing can have happened on the dead connection —
    it was the request's first statement, and a write's transaction only begins with it — so the
    request goes on as if the connection had been fresh. Any later failure is the caller's."""

    def _execute_internal(self, *args: Any, **kwargs: Any) -> Any:
        first = not self.info.get("executed")
        self.info["executed"] = True
        if not first:
            return super()._execute_internal(*args, **kwargs)
        # The checkout first: a connection that cannot be opened (refused, unreachable) is not
        # the case retried here, and answers as it is.
        self.connection()
        try:
            return super()._execute_internal(*args, **kwargs)
        except DBAPIError as exc:
            if not _disconnected(exc):
                raise
            log.warning("the pooled database connection was dead; trying the first statement again")
            _rollback_quietly(self)
            return super()._execute_internal(*args, **kwargs)


def _apply_autocommit(session: Session, _transaction: Any, connection: Any) -> None:
    """A read session's connection runs each statement on its own: no BEGIN, no COMMIT."""
    if session.info.get("autocommit"):
        connection.connection.dbapi_connection.autocommit = True


def commit_now(session: Session) -> None:
    """Commit the session's transaction; its later statements each stand alone (autocommit), so
    nothing done after this point can be rolled back with what was committed."""
    session.commit()
    session.info["autocommit"] = True


@contextmanager
def session_scope(*, transaction: bool = True) -> Iterator[Session]:
    """One session for one request. With `transaction` (writes) it is one transaction, committed
    if the block succeeds and rolled back otherwise; without (reads) every statement stands alone.
    Database outages surface as ServiceUnavailable."""
    get_engine()
    assert _sessionmaker is not None
    session = _sessionmaker()
    session.info["autocommit"] = not transaction
    try:
        yield session
        session.commit()
    except BaseException as exc:
        _rollback_quietly(session)
        # pg8000 lets some socket errors through unwrapped (e.g. a timeout during the SSL
        # negotiation at connect time): those are outages too; so is a pool with no free
        # connection within POOL_TIMEOUT_S.
        if (isinstance(exc, DBAPIError) and is_unavailable(exc)) or isinstance(
            exc, (ConnectionError, TimeoutError, PoolTimeout)
        ):
            raise ServiceUnavailable("The database is unavailable; try again shortly") from exc
        raise
    finally:
        session.close()


def _rollback_quietly(session: Session) -> None:
    try:
        session.rollback()
    except Exception:  # the connection may be gone; the transaction went with it
        log.debug("rollback failed", exc_info=True)
