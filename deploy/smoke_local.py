"""Run the smoke test against the local run command, the way CI does: start `python -m devtools.run
--scratch` (devtools/local_run.py: a throwaway database, Redis, signing key and demo users, never the
development data in .devdata; the server is `chalice local`'s with API Gateway's part played as
deployed) on a free port, wait for /api/health, run scripts/smoke.py as the demo `demo` (an admin, so
the invitation step runs too), accept one of the demo data's invitations with nothing but what the
run printed on its console (the accept link of the message to newhire@example.com) and log in as the
new account, then stop everything that was started.

    python -m deploy.smoke_local [--startup-timeout 300] [--smoke-timeout 180] [--pooler]

With `--pooler` the local run serves through PgBouncer in transaction mode (`devtools.run --pooler`),
as the API is deployed behind RDS Proxy.

Every wait has a deadline. The run command is started in its own session; stopping sends SIGINT to
the whole session (the run command stops its server, drops its database and stops the services it
started), then SIGTERM and SIGKILL to whatever is still there, so nothing outlives this command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.local_run import LocalRun

ROOT = Path(__file__).resolve().parent.parent


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def embedded_servers() -> set[int]:
    """Pids of the local run's embedded servers: PostgreSQL on .devdata/pg and the Redis whose data
    is in .devdata/ (the tests' throwaway ones live in .devdata/tmp). They detach into sessions of
    their own, so the session sweep above does not see them."""
    found = set()
    devdata = ROOT / ".devdata"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{entry}/exe")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        postgres = exe.endswith("/postgres") and str(devdata / "pg").encode() in argv
        redis = exe.endswith("/redis-server") and cwd == str(devdata)
        if postgres or redis:
            found.add(int(entry))
    return found


def stop_new_servers(before: set[int], *, grace: float = 20.0) -> list[int]:
    """Servers this run started that its own exit did not stop. They are stopped under CI (where
    nothing else runs); on a workstation another process may share them, so they are only named."""
    deadline = time.monotonic() + grace
    while (left := sorted(embedded_servers() - before)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left and os.environ.get("CI") == "true":
        # SIGINT is PostgreSQL's fast shutdown; Redis saves and exits on SIGINT as on SIGTERM.
        _signal_all(left, signal.SIGINT)
        deadline = time.monotonic() + 15
        while (still := sorted(embedded_servers() - before)) and time.monotonic() < deadline:
            time.sleep(0.5)
        _signal_all(still, signal.SIGKILL)
    return left


def accept_from_the_console(run: LocalRun, address: str = "newhire@example.com") -> int:
    """Accept the demo invitation to `address` with the token the console printed, then log in."""
    import json
    from urllib import error, request

    def post(path: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
        call = request.Request(
            run.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with request.urlopen(call, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except error.HTTPError as refused:
            return refused.code, json.loads(refused.read() or b"{}")

    password = "newhire's own password"
    token = run.invitation_token(address)
    preview = post("/api/auth/invitations/preview", {"token": token})
    accepted = post(
        "/api/auth/invitations/accept", {"token": token, "username": "newhire", "password": password}
    )
    login = post("/api/auth/login", {"username": "newhire", "password": password})
    if (preview[0], accepted[0], login[0]) != (200, 200, 200):
        print(f"accepting the console's invitation failed: {preview} {accepted} {login}", file=sys.stderr)
        return 1
    print(f"ok  invitation to {address} accepted from the console's link; newhire logged in", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-test the API under the local run command.")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=300.0,
        help="seconds for services, migrations, demo data and the server (default 300)",
    )
    parser.add_argument("--smoke-timeout", type=float, default=180.0, help="seconds for the smoke test")
    parser.add_argument("--username", default="demo", help="demo user to log in as (default demo, an admin)")
    parser.add_argument(
        "--pooler", action="store_true", help="the local run through PgBouncer (transaction mode)"
    )
    args = parser.parse_args(argv)

    # A SIGTERM (e.g. from an outer `timeout`) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    servers_before = embedded_servers()
    run = LocalRun(startup_timeout=args.startup_timeout, extra_args=["--pooler"] if args.pooler else None)
    status = 1
    try:
        run.start()
        print(f"the local run answered on {run.base_url} after {run.ready_after:.1f} s", flush=True)
        if args.pooler and "Through PgBouncer" not in run.log_text():
            raise RuntimeError(
                f"--pooler: the local run does not say it serves through PgBouncer:\n{run.tail()}"
            )
        smoke = [
            sys.executable,
            str(ROOT / "scripts" / "smoke.py"),
            "--base-url",
            run.base_url,
            "--username",
            args.username,
            "--wait",
            "30",
            "--password-file",
            str(run.login_file),
        ]
        status = subprocess.run(
            smoke, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=args.smoke_timeout
        ).returncode
        if status == 0:
            status = accept_from_the_console(run)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
    except subprocess.TimeoutExpired:
        print(f"the smoke test did not finish within {args.smoke_timeout:.0f} s", file=sys.stderr)
    finally:
        stop_started = time.monotonic()
        exit_status = run.stop()
        if run.killed:
            print(
                f"had to SIGKILL {len(run.killed)} process(es) of the local run: {run.killed}",
                file=sys.stderr,
            )
        elif exit_status not in (0, None):
            print(f"the local run exited with {exit_status}; its log:\n{run.tail()}", file=sys.stderr)
        servers_left = stop_new_servers(servers_before)
        if servers_left:
            print(
                f"embedded servers started by this run outlived it: {servers_left}"
                + (" (stopped)" if os.environ.get("CI") == "true" else " (shared? left running)"),
                file=sys.stderr,
            )
        print(
            f"local run stopped in {time.monotonic() - stop_started:.1f} s "
            f"(total {time.monotonic() - started:.1f} s)",
            flush=True,
        )
    # The local run must stop cleanly on SIGINT (exit 0, nothing killed) like `make run` does.
    if run.killed or exit_status != 0:
        status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
