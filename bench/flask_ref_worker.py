"""The seed stack's side of the benchmark: a process in the seed stack's own environment that serves
requests through Flask's test client on command and reports their timings.

    <flask-ref venv>/bin/python bench/flask_ref_worker.py <anchor dir>

It reads DATABASE_URL, REDIS_URL and JWT_SECRET_KEY as the seed stack's app.py does. Protocol: one
JSON object per line each way. Commands:

    {"op": "info"}                     -> {"ok": true, "rows", "site1_rows", "mid_id", "packages", ...}
    {"op": "token"}                    -> {"ok": true, "token"}  (site 1, as its bench.py makes them)
    {"op": "run", "path": P, "n": N}   -> {"ok": true, "ns": [N timings], "status": 200, "bytes": B}
    {"op": "quit"}                     -> {"ok": true}, then the process ends

Any failure is an answer {"ok": false, "error": "..."}; the process keeps serving. Only the standard
library is imported before `main()`, so the protocol can be exercised without Flask.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any, TextIO

PACKAGES = (
    "Flask",
    "Werkzeug",
    "Flask-SQLAlchemy",
    "SQLAlchemy",
    "psycopg2-binary",
    "Flask-JWT-Extended",
    "PyJWT",
    "marshmallow",
    "redis",
)


class Handler:
    """Answers the commands. `client` is a Flask test client (or anything with `.get(path,
    headers=...)` returning an object with `.status_code` and `.get_data()`)."""

    def __init__(self, client: Any, token: str, info: Any = None) -> None:
        self.client, self.token, self._info = client, token, info

    def info(self, _command: dict[str, Any]) -> dict[str, Any]:
        return self._info() if callable(self._info) else dict(self._info or {})

    def token_(self, _command: dict[str, Any]) -> dict[str, Any]:
        return {"token": self.token}

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        path, n = command["path"], int(command["n"])
        expect = int(command.get("expect", 200))
        if not isinstance(path, str) or not path.startswith("/") or not 0 < n <= 100_000:
            raise ValueError("run needs a path starting with / and 0 < n <= 100000")
        headers = {"Authorization": f"Bearer {self.token}"}
        timings, size = [], 0
        for _ in range(n):
            started = time.perf_counter_ns()
            response = self.client.get(path, headers=headers)
            timings.append(time.perf_counter_ns() - started)
            if response.status_code != expect:
                raise RuntimeError(
                    f"GET {path}: expected {expect}, got {response.status_code}: "
                    f"{response.get_data()[:300]!r}"
                )
            size = len(response.get_data())
        return {"ns": timings, "status": expect, "bytes": size}


def serve(handler: Handler, lines: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    def answer(payload: dict[str, Any]) -> None:
        out.write(json.dumps(payload) + "\n")
        out.flush()

    operations = {"info": handler.info, "token": handler.token_, "run": handler.run}
    for line in lines:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
            op = command.get("op")
            if op == "quit":
                answer({"ok": True})
                return
            if op not in operations:
                raise ValueError(f"unknown op {op!r}")
            answer({"ok": True, **operations[op](command)})
        except Exception as exc:  # reported to the parent, which decides; the worker keeps serving
            answer(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-2000:],
                }
            )


def main(anchor: str) -> None:
    sys.path.insert(0, anchor)
    from datetime import timedelta
    from importlib.metadata import version

    from flask_jwt_extended import create_access_token
    from sqlalchemy import text

    import app as seed_app  # the seed stack's app.py

    flask_app = seed_app.create_app()
    with flask_app.app_context():
        token = create_access_token(
            identity="1", additional_claims={"site_id": 1}, expires_delta=timedelta(hours=2)
        )

    def info() -> dict[str, Any]:
        with flask_app.app_context():
            row = seed_app.db.session.execute(
                text(
                    "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FILTER (WHERE site_id = 1),"
                    " count(*) FILTER (WHERE site_id = 1), count(*), current_setting('server_version')"
                    " FROM interactions"
                )
            ).one()
            seed_app.db.session.rollback()
        return {
            "mid_id": row[0],
            "site1_rows": row[1],
            "rows": row[2],
            "postgres": row[3],
            "python": sys.version.split()[0],
            "packages": {p: version(p) for p in PACKAGES},
        }

    serve(Handler(flask_app.test_client(), token, info))


if __name__ == "__main__":
    main(sys.argv[1])
