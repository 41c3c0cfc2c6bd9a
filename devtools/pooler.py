"""PgBouncer in transaction mode in front of a PostgreSQL, as RDS Proxy multiplexes deployed: many
client connections share a few server connections, each lent for one transaction (or one statement
outside a transaction). The tests run through it (`make test-pooled`), the scale-out benchmark too.

    python -m devtools.pooler install     # apt-get install pgbouncer, as root, when missing

    pooler = Pooler(upstream_unix="/run/.s.PGSQL.5432", directory=tmp, pool_size=20).start()
    pooler.url("interactions")            # postgresql+pg8000://postgres@127.0.0.1:<port>/interactions
    pooler.admin("SHOW POOLS")            # the admin console
    pooler.stop()

Debian's PgBouncer (1.18) does not track protocol-level named prepared statements: the API sends
unnamed ones only (chalicelib/driver.py). It refuses to run as root, so it runs as the embedded
PostgreSQL's system user (or `postgres`) when started by root; its configuration, authentication
file and log live in `directory`, which it is given to read.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devtools.debian import ensure_binary

PGBOUNCER = Path(os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer"))
# Run as one of these when started by root (the first that exists).
SYSTEM_USERS = ("embedded_postgres", "postgres")


def ensure_pgbouncer() -> Path:
    """The pgbouncer binary; installed from Debian's packages when missing (needs root and apt-get).
    The package's own service, where the package starts one, is not used: the tests start their own
    instances."""
    return ensure_binary(PGBOUNCER, "pgbouncer", "PGBOUNCER", recommends=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in SYSTEM_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise SystemExit(f"pgbouncer refuses to run as root and none of {SYSTEM_USERS} exists")


class Pooler:
    """One PgBouncer process (transaction pooling) in front of `upstream_unix` (a PostgreSQL socket
    path) or `upstream` (host, port), listening on 127.0.0.1:`port` (a free one by default)."""

    def __init__(
        self,
        *,
        directory: Path,
        upstream_unix: str | None = None,
        upstream: tuple[str, int] | None = None,
        pool_size: int = 20,
        max_client_conn: int = 1000,
        user: str = "postgres",
        password: str = "",
        port: int | None = None,
    ) -> None:
        if (upstream_unix is None) == (upstream is None):
            raise ValueError("give upstream_unix or upstream")
        self.directory = Path(directory)
        self.upstream_unix, self.upstream = upstream_unix, upstream
        self.pool_size, self.max_client_conn = pool_size, max_client_conn
        self.user, self.password = user, password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_front_of(cls, database_url: str, directory: Path, **options: Any) -> Pooler:
        """A pooler (not started) for the server of `database_url` (a unix socket or host:port),
        signing in as its user; `pooler.url(database)` is then the database through it."""
        from sqlalchemy.engine import make_url

        from chalicelib.config import normalise_database_url

        url = make_url(normalise_database_url(database_url))
        sock = url.query.get("unix_sock")
        return cls(
            directory=directory,
            upstream_unix=sock if isinstance(sock, str) else None,
            upstream=None if sock else (url.host or "127.0.0.1", url.port or 5432),
            user=url.username or "postgres",
            password=url.password or "",
            **options,
        )

    # --- configuration -------------------------------------------------------------------------

    def _config(self) -> str:
        if self.upstream_unix is not None:
            socket_path = Path(self.upstream_unix)
            host, upstream_port = str(socket_path.parent), socket_path.name.rsplit(".", 1)[-1]
        else:
            assert self.upstream is not None
            host, upstream_port = self.upstream[0], str(self.upstream[1])
        auth = "trust" if not self.password else "plain"
        lines = [
            "[databases]",
            f"* = host={host} port={upstream_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            # No unix socket of its own: nothing to leave in /var/run or /tmp.
            "unix_socket_dir =",
            f"auth_type = {auth}",
            f"auth_file = {self.directory / 'users.txt'}",
            "admin_users = " + self.user,
            "pool_mode = transaction",
            f"default_pool_size = {self.pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            f"max_client_conn = {self.max_client_conn}",
            f"max_db_connections = {self.pool_size}",
            # Clients wait at most this for a server connection (the API's pool waits 2 s).
            "query_wait_timeout = 10",
            # pg8000 sends none of these today; other drivers (psql's libpq) do.
            "ignore_startup_parameters = extra_float_digits,options",
            # A server connection is clean when it comes back: nothing a client could leave on it
            # (the API sets nothing, and RESET ALL would hide it if it did: see tests/pooled).
            "server_reset_query =",
            "server_check_delay = 0",
            f"logfile = {self.directory / 'pgbouncer.log'}",
            f"pidfile = {self.directory / 'pgbouncer.pid'}",
            "log_connections = 0",
            "log_disconnections = 0",
        ]
        return "\n".join(lines) + "\n"

    def start(self, *, timeout: float = 10.0) -> Pooler:
        binary = ensure_pgbouncer()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "users.txt").write_text(f'"{self.user}" "{self.password}"\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(self._config())
        command = [str(binary), str(config)]
        user = _run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            # It reads its files after switching user: the folder and what is in it become its own.
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            _open_parents(self.directory)
            command = [str(binary), "-u", user, str(config)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port} within {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        if self.process is not None and self.process.stderr is not None and self.process.poll() is not None:
            text = self.process.stderr.read().decode(errors="replace")
        try:
            text += (self.directory / "pgbouncer.log").read_text()
        except OSError:
            pass
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the pooler is gone at once, its connections reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Stop it (SIGINT: a fast shutdown) and wait; SIGKILL if it lingers. Safe to call again."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
        self.process = None

    def remove_files(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- use ---------------------------------------------------------------------------------------

    def url(self, database: str) -> str:
        password = f":{self.password}" if self.password else ""
        return f"postgresql+pg8000://{self.user}{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A command on PgBouncer's admin console (SHOW POOLS, SHOW SERVERS, RECONNECT...), as rows.
        The console speaks the simple query protocol only."""
        import pg8000.native

        conn = pg8000.native.Connection(
            self.user, host="127.0.0.1", port=self.port, database="pgbouncer", password=self.password or None
        )
        try:
            context = conn.execute_simple(command)
            columns = [c["name"] for c in (context.columns or [])]
            return [dict(zip(columns, row, strict=True)) for row in (context.rows or [])]
        finally:
            conn.close()

    def server_states(self, database: str, count: int) -> dict[int, tuple[int, list[str]]]:
        """{backend pid: (prepared statements, settings a session made)} of `count` server
        connections to `database` (the pool's size covers all of them): as many transactions held
        open at once through the pooler, each on a server connection of its own. The parameters
        the pooler itself sets for each client (POOLER_KEPT) are left out."""
        return _server_states(self, database, count)

    def server_connections(self, database: str) -> int:
        """Server connections open to `database` now (active, idle, used, tested, logging in)."""
        total = 0
        for pool in self.admin("SHOW POOLS"):
            if pool.get("database") == database:
                total += sum(
                    int(pool.get(k) or 0)
                    for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
                )
        return total


# A pooler sets these itself for each client it lends a server connection to (PgBouncer's tracked
# parameters: the client's own application_name, say): the pooler's state, not a client's.
POOLER_KEPT = ("application_name", "client_encoding", "DateStyle", "standard_conforming_strings")


def _server_states(pooler: Pooler, database: str, count: int) -> dict[int, tuple[int, list[str]]]:
    import threading

    import pg8000.native

    states: dict[int, tuple[int, list[str]]] = {}
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            conn = pg8000.native.Connection(
                pooler.user,
                host="127.0.0.1",
                port=pooler.port,
                database=database,
                password=pooler.password or None,
            )
            try:
                conn.run("BEGIN")
                pid = conn.run("SELECT pg_backend_pid()")[0][0]
                prepared = conn.run("SELECT count(*) FROM pg_prepared_statements")[0][0]
                settings = [
                    name
                    for (name,) in conn.run("SELECT name FROM pg_settings WHERE source = 'session'")
                    if name not in POOLER_KEPT
                ]
                barrier.wait(10)  # every transaction open at once: no server lent twice
                states[pid] = (prepared, settings)
                conn.run("ROLLBACK")
            finally:
                conn.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise RuntimeError(f"inspecting the server connections failed: {errors[0]!r}")
    return states


def _open_parents(path: Path) -> None:
    """Let another user reach `path`: traverse permission on each parent (as embedded-postgres does
    for its data directory); nothing is made readable."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"pgbouncer: {ensure_pgbouncer()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
