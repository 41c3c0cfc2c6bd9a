"""`make run`: local services (embedded unless DATABASE_URL / REDIS_URL are set), migrations,
demo data when the database is empty, the demo login, then `chalice local`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from devtools import embedded

LOGIN_FILE = embedded.DEVDATA / "demo-login.txt"


def _database_is_empty() -> bool:
    from sqlalchemy import func, select

    from chalicelib.db import session_scope
    from chalicelib.models import User

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User)) == 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    os.environ.update(embedded.local_environment())
    from chalicelib import cli, demo

    if cli.main(["migrate"]) != 0:
        return 1
    if _database_is_empty():
        password = demo.seed(sites=3, interactions=500)
        embedded.DEVDATA.mkdir(exist_ok=True)
        LOGIN_FILE.write_text(password)
        LOGIN_FILE.chmod(0o600)
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    print()
    if LOGIN_FILE.exists():
        print(f"Log in as demo / {LOGIN_FILE.read_text().strip()}  (editor, viewer: same password)")
    else:
        print("The database already had users: log in with one of them.")
    print(f"API: http://{host}:{port}/api  (Ctrl-C stops it)\n", flush=True)
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    # No autoreload: Chalice's watcher polls every file under the project, .devdata's live database
    # files included, so it restarted the server (dropping requests) whenever the database wrote.
    process = subprocess.Popen([chalice, "local", "--stage", "dev", "--host", host, "--port", port,
                                "--no-autoreload"])
    # SIGTERM (a supervisor, `kill`) stops it like Ctrl-C, so the embedded servers are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())
