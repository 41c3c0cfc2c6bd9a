"""Fuzz the API with Schemathesis against the local run's server, driven by /api/openapi.json.

    .venv/bin/python -m scripts.fuzz [--max-examples 60] [--seed 1] [--workers 1]

It starts everything it needs and stops it again: a scratch database `fuzz_<pid>` on the embedded
PostgreSQL (or on the server of DATABASE_URL), a throwaway Redis (or REDIS_URL), two sites and an
admin of one (a platform admin too), then `python -m devtools.server` (`chalice local`'s server
with API Gateway's part played as deployed by devtools/edge.py: the same front as `make run`) on a
free port. Schemathesis runs every operation with a valid token (and its own unauthenticated
variants) under the checks not_a_server_error, response_schema_conformance,
negative_data_rejection, ignored_auth and use_after_free. The rate limits are raised for the run so
the fuzzer reaches past them. It prints the number of generated requests and exits non-zero on any
failure or if fewer than `--min-requests` were sent.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib import error, request

ROOT = Path(__file__).resolve().parent.parent
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "use_after_free",
]
REPORT_DIR = ROOT / ".devdata" / "fuzz-report"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _services(database: str) -> tuple[dict[str, str], str, object]:
    """(environment for the app, admin URL, redis handle) with a fresh scratch database."""
    from devtools import embedded

    url, admin, redis_url, redis_handle = embedded.scratch_services(database, "fuzz-redis")
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        # Past the limits, so the fuzzer exercises the endpoints rather than 429s.
        "API_RATE_PER_MINUTE": "1000000",
        "LOGIN_RATE_PER_MINUTE": "1000000",
        "SEARCH_RATE_PER_MINUTE": "1000000",
        "LOGIN_MAX_FAILURES": "1000000",
        # The invitations it makes are written next to its report, not into the local run's mailbox.
        "MAIL_DELIVERY": f"directory:{REPORT_DIR / 'mail'}",
    }
    return env, admin, redis_handle


def _seed(env: dict[str, str]) -> tuple[str, str]:
    """Migrate and create the fuzzer's sites and its account (an admin of one site, a platform
    admin); (username, password)."""
    os.environ.update(env)
    from chalicelib import cli
    from chalicelib.auth.passwords import hash_password
    from chalicelib.db import reset_engine, session_scope
    from chalicelib.kit.names import skeleton
    from chalicelib.models import Site, SiteMembership, User

    if cli.main(["migrate"]) != 0:
        raise SystemExit("migration failed")
    password = secrets.token_urlsafe(16)
    with session_scope() as session:
        site = Site(name="Fuzz", name_skeleton=skeleton("Fuzz"), description="Fuzzing")
        other = Site(name="Elsewhere", name_skeleton=skeleton("Elsewhere"), description="Another tenant")
        # A platform admin too, so that creating sites is exercised (and not only refused).
        user = User(
            username="fuzzer",
            email="fuzzer@example.com",
            password_hash=hash_password(password),
            platform_admin=True,
        )
        session.add_all([site, other, user])
        session.flush()
        session.add(SiteMembership(user_id=user.id, site_id=site.id, role="admin"))
    reset_engine()
    return "fuzzer", password


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the local server exited during start-up")
        try:
            with request.urlopen(base + "/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit("the local server did not become healthy")


def _login(base: str, username: str, password: str) -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    req = request.Request(
        base + "/api/auth/login", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with request.urlopen(req, timeout=10) as resp:
        return json.load(resp)["data"]["token"]


def _count_requests(ndjson: Path) -> int:
    """Generated requests, from the event stream: every interaction recorded by a check run."""
    total = 0
    if not ndjson.exists():
        return 0
    with ndjson.open() as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            scenario = event.get("ScenarioFinished")
            if scenario:
                total += len((scenario.get("recorder") or {}).get("interactions") or {})
    return total


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=60, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--workers",
        default="1",
        help="Schemathesis workers (default 1: one request at a time, as one Lambda container)",
    )
    parser.add_argument("--min-requests", type=int, default=1000)
    parser.add_argument(
        "--max-time",
        type=int,
        default=900,
        help="seconds each schemathesis run may take before it is stopped",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    # A CI timeout's SIGTERM must still run the clean-up below (the server, the scratch database).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = f"fuzz_{os.getpid()}"
    env, admin, redis_handle = _services(database)
    username, password = _seed(env)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    log = (REPORT_DIR / "local-server.log").open("w")  # the app's error log, for failures
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    status = 1
    try:
        _wait_healthy(base, process)
        front_url = base
        total = 0
        started = time.monotonic()
        # Logout ends the session the token belongs to, so it is fuzzed last, on its own.
        for label, selection in (
            ("api", ["--exclude-path", "/api/auth/logout"]),
            ("logout", ["--include-path", "/api/auth/logout"]),
        ):
            token = _login(base, username, password)
            ndjson = REPORT_DIR / f"events-{label}.ndjson"
            ndjson.unlink(missing_ok=True)
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{front_url}/api/openapi.json",
                "--url",
                front_url,
                *selection,
                "--checks",
                ",".join(CHECKS),
                "--header",
                f"Authorization: Bearer {token}",
                "--workers",
                str(args.workers),
                "--max-examples",
                str(args.max_examples),
                "--seed",
                str(args.seed),
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--request-timeout",
                "10",
                "--generation-database",
                "none",
                "--report",
                "ndjson,junit",
                "--report-dir",
                str(REPORT_DIR),
                "--report-ndjson-path",
                str(ndjson),
                "--report-junit-path",
                str(REPORT_DIR / f"junit-{label}.xml"),
                "--no-color",
            ]
            # Run from the report directory: Schemathesis keeps its cache (.schemathesis/) there.
            result = subprocess.run(
                command,
                cwd=REPORT_DIR,
                timeout=args.max_time,
                env={**os.environ, "SCHEMATHESIS_HOOKS": str(ROOT / "scripts" / "fuzz_hooks.py")},
            )
            sent = _count_requests(ndjson)
            total += sent
            print(f"fuzz [{label}]: {sent} generated requests; schemathesis exit status {result.returncode}")
            status = max(status if label != "api" else 0, result.returncode)
        print(
            f"\nfuzz: {total} generated requests in {time.monotonic() - started:.0f} s; "
            f"{'no failures' if status == 0 else 'FAILURES'}; reports in {REPORT_DIR}"
        )
        if status == 0 and total < args.min_requests:
            print(f"fuzz: fewer than {args.min_requests} requests were generated")
            status = 1
    finally:
        _stop(process)
        log.close()
        from sqlalchemy import create_engine, text

        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        engine.dispose()
        if redis_handle is not None:
            from devtools import embedded

            embedded.stop_redis(redis_handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
