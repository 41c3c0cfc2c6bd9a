"""`make run`: local services (embedded unless DATABASE_URL / REDIS_URL are set), migrations, demo
data when the database is empty, the demo login, then the API behind API Gateway's part as deployed
(devtools/server.py: `chalice local`'s server with devtools/edge.py in front of the handler).

    python -m devtools.run [--host H] [--port P]          # HOST / PORT in the environment work too
    python -m devtools.run --scratch [--login-file PATH]  # throwaway data (smoke and browser tests)
    python -m devtools.run --check-port                   # only: can it listen there? (stdlib only)
    python -m devtools.run ... --mail-directory DIR       # invitations' .eml files there
    python -m devtools.run ... --pooler                   # the API through PgBouncer (transaction mode)

The address is checked before anything slow (`make run` checks it even before installing): a busy
port fails at once, naming `PORT=`.

`--scratch` touches no development data: a fresh database `run_<pid>` (on DATABASE_URL's server or
the embedded one), a throwaway Redis (or REDIS_URL), a signing key of its own and freshly seeded
demo users whose password is printed (and written to PATH when given); the database, the Redis and
its mail folder (`.devdata/run-mail-<pid>/`, unless --mail-directory names another) are removed
when it stops.

`--pooler` puts PgBouncer in transaction mode (devtools/pooler.py, 20 server connections) between
the API and its database, as RDS Proxy is deployed: the migrations and the demo data go straight to
the server, every request through the pooler; it is stopped with the run.

SIGINT or SIGTERM — to this process, to its process group (Ctrl-C) or to `make` alone — stops it:
the server closes, the services this run started are stopped, it says so and exits 0. Its handlers
are its own, so a SIGINT ignored on entry (a background job) does not keep it from stopping, and
what it starts begins with the default disposition.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from devtools import embedded

LOGIN_FILE = embedded.DEVDATA / "demo-login.txt"
MAIL_FOLDER = embedded.DEVDATA / "mail"  # invitations' messages (MAIL_DELIVERY=directory:...)
# CORS_ALLOW_ORIGIN when it is unset: the usual frontend dev servers (Create React App and Next.js
# on 3000, Vite on 5173). A deployed stage has its own (.chalice/config.json, deploy/stages.py).
LOCAL_ORIGINS = "http://localhost:3000,http://localhost:5173"
# SIGHUP, SIGINT, SIGTERM as bits of /proc/<pid>/status's signal masks.
_FATAL_MASK = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))


class Stop:
    """Why and when the run command stops.

    GNU make does not pass SIGINT (or SIGHUP) on to the command it runs: it expects the terminal to
    have sent it to the whole process group, blocks the signal and waits for its child — so a
    `kill -INT` to make alone used to leave everything running. The watcher sees make in that
    state (the signal blocked in its mask while it waits, which make does only in its fatal-signal
    handler) and stops this command too. It also stops when make goes away.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.serving = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        parent = os.getppid()
        if _command_name(parent) in ("make", "gmake"):
            threading.Thread(target=self._watch_make, args=(parent,), daemon=True).start()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            print("(already stopping)", flush=True)
            return
        self.reason = self.reason or signal.Signals(signum).name
        self.event.set()
        if not self.serving:
            raise KeyboardInterrupt  # start-up (migrations, the seed) is abandoned; it is one transaction

    def _watch_make(self, parent: int) -> None:
        strikes = 0
        while not self.event.is_set():
            time.sleep(0.4)
            if os.getppid() != parent:
                self._interrupt("make exited")
                return
            strikes = strikes + 1 if _blocked_signals(parent) & _FATAL_MASK else 0
            if strikes >= 2:  # twice in a row: not a passing moment of make's own bookkeeping
                self._interrupt("make was interrupted")
                return

    def _interrupt(self, reason: str) -> None:
        self.reason = reason
        os.kill(os.getpid(), signal.SIGINT)  # handled in the main thread like any SIGINT


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _blocked_signals(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def address_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (None: it can), found by binding there as the
    server will (IPv4, SO_REUSEADDR like http.server)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return cannot_serve(host, port, exc)
    return None


def cannot_serve(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return (
        f"cannot serve on {host}:{port}: {reason}. Choose another port: PORT={port + 1} make run (or --port)"
    )


def _database_is_empty() -> bool:
    from sqlalchemy import func, select

    from chalicelib.db import session_scope
    from chalicelib.models import User

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User)) == 0


class Scratch:
    """Throwaway services and data for one run (`--scratch`)."""

    def __init__(self) -> None:
        self.database = f"run_{os.getpid()}"
        self.url, self.admin, self.redis_url, self.redis_handle = embedded.scratch_services(
            self.database, "run-redis"
        )

    def environment(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.url,
            "REDIS_URL": self.redis_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
        }

    @property
    def mail(self) -> Path:
        """Its messages' folder unless --mail-directory names one (that one is the caller's to remove)."""
        return embedded.DEVDATA / f"run-mail-{os.getpid()}"

    def remove(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        finally:
            engine.dispose()
        import shutil

        shutil.rmtree(self.mail, ignore_errors=True)
        if self.redis_handle is not None:
            # SIGTERM rather than SHUTDOWN: the client's retries after the server hangs up cost
            # seconds, and a throwaway Redis has nothing worth keeping; its files go with it.
            embedded.stop_redis(self.redis_handle)


def _write_login(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(password + "\n")


def _prepare(args: argparse.Namespace, scratch: Scratch | None) -> str:
    """Services, migrations and demo data; returns the login line to print."""
    if scratch is not None:
        os.environ.update(scratch.environment())
    else:
        os.environ.update(embedded.local_environment())
    os.environ["MAIL_DELIVERY"] = _mail_delivery(args, scratch)
    from chalicelib import cli, demo

    if cli.main(["migrate"]) != 0:
        raise SystemExit(1)
    login_file = Path(args.login_file) if args.login_file else (None if scratch else LOGIN_FILE)
    if scratch or _database_is_empty():
        password = demo.seed(sites=3, interactions=args.interactions)
        if login_file is not None:
            _write_login(login_file, password)
        return f"Log in as demo / {password}  (editor, viewer: same password)"
    if login_file is not None and login_file.exists():
        return (
            f"Log in as demo / {login_file.read_text().strip()}  (editor, viewer: same password; "
            f"kept in {login_file})"
        )
    return "The database already had users: log in with one of them."


def _through_pooler() -> Any:
    """PgBouncer in front of DATABASE_URL's server; DATABASE_URL then names the database through it."""
    from sqlalchemy.engine import make_url

    from chalicelib import config, db
    from chalicelib.config import normalise_database_url
    from devtools.pooler import Pooler

    direct = os.environ["DATABASE_URL"]
    database = make_url(normalise_database_url(direct)).database or "postgres"
    pooler = Pooler.in_front_of(direct, embedded.DEVDATA / "tmp" / f"pgbouncer-{os.getpid()}", pool_size=20)
    pooler.start()
    os.environ["DATABASE_URL"] = pooler.url(database)
    config.reset_settings()
    db.reset_engine()
    print(
        f"Through PgBouncer (transaction pooling, 20 server connections) on 127.0.0.1:{pooler.port}",
        flush=True,
    )
    return pooler


def _mail_delivery(args: argparse.Namespace, scratch: Scratch | None) -> str:
    """MAIL_DELIVERY for this run: --mail-directory, else the scratch run's own folder, else the
    environment's, else .devdata/mail/."""
    if args.mail_directory:
        return f"directory:{args.mail_directory}"
    if scratch is not None:
        return f"directory:{scratch.mail}"
    return os.environ.get("MAIL_DELIVERY", f"directory:{MAIL_FOLDER}")


def _mailbox(args: argparse.Namespace, scratch: Scratch | None) -> Any:
    """The console's view of the mail directory (None when mail goes elsewhere, e.g. MAIL_DELIVERY=ses)."""
    from devtools.mailbox import Watcher

    kind, _, folder = _mail_delivery(args, scratch).partition(":")
    if kind != "directory" or not folder:
        return None
    from chalicelib.config import Settings

    invite_url = Settings.from_env().invite_url
    return Watcher(Path(folder), invite_url=invite_url, api=f"http://{args.host}:{args.port}/api")


def _close_clients() -> None:
    """The app's pool and Redis client, so that the services see no client left when they stop."""
    for module, name in (("chalicelib.db", "reset_engine"), ("chalicelib.cache", "reset_redis")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, name):
            try:
                getattr(loaded, name)()
            except Exception:
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--scratch", action="store_true", help="throwaway database, Redis, key and demo users"
    )
    parser.add_argument(
        "--login-file",
        help="write the demo password here (default .devdata/demo-login.txt; with --scratch: nowhere)",
    )
    parser.add_argument(
        "--interactions", type=int, default=500, help="demo interactions to seed (default 500)"
    )
    parser.add_argument(
        "--check-port", action="store_true", help="only check that the address is free, then exit"
    )
    parser.add_argument(
        "--pooler",
        action="store_true",
        help="serve through PgBouncer in transaction mode (installed when missing)",
    )
    parser.add_argument(
        "--mail-directory",
        help="write invitations' messages here (default .devdata/mail/, or MAIL_DELIVERY's; with --scratch: "
        "a folder of its own, removed when it stops)",
    )
    args = parser.parse_args(argv)
    problem = address_problem(args.host, args.port)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    if args.check_port:
        return 0
    if not os.environ.get("CORS_ALLOW_ORIGIN", "").strip():
        os.environ["CORS_ALLOW_ORIGIN"] = LOCAL_ORIGINS
    stop = Stop()
    stop.install()
    scratch: Scratch | None = None
    server: Any = None
    thread: threading.Thread | None = None
    watcher: Any = None
    pooler: Any = None
    started = time.monotonic()
    try:
        scratch = Scratch() if args.scratch else None
        watcher = _mailbox(args, scratch)  # before the seed: its invitations are shown too
        login = _prepare(args, scratch)
        if args.pooler:
            pooler = _through_pooler()
        from devtools.server import create_server, describe

        server, edge, why = create_server(args.host, args.port)
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        stop.serving = True
        if stop.event.is_set():  # a signal in the last moment of start-up
            raise KeyboardInterrupt
        thread.start()
        print(f"\n{login}")
        print(describe(edge, why))
        print(
            f"API: http://{args.host}:{args.port}/api  (ready after {time.monotonic() - started:.1f} s; "
            f"Ctrl-C stops it)\n",
            flush=True,
        )
        if watcher is not None:
            print(f"Invitations are written to {watcher.folder} and shown here as they are sent.", flush=True)
            watcher.poll()
            watcher.start()
        while not stop.event.wait(0.5):
            if not thread.is_alive():
                print("the HTTP server stopped by itself", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print(f"\nStopping during start-up ({stop.reason or 'SIGINT'})", flush=True)
    except OSError as exc:  # e.g. the port was taken during start-up
        print(cannot_serve(args.host, args.port, exc), file=sys.stderr)
        return 1
    finally:
        stop.serving = False
        stopping = time.monotonic()
        if watcher is not None:
            watcher.stop()
        if server is not None and thread is not None and thread.is_alive():
            server.shutdown()
        if server is not None:
            server.server.server_close()
        _close_clients()
        if pooler is not None:
            pooler.stop()
            pooler.remove_files()
        if scratch is not None:
            scratch.remove()
        embedded.stop_services()
    print(f"Stopped cleanly ({stop.reason or 'SIGINT'}) in {time.monotonic() - stopping:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
