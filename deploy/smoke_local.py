"""Run the smoke test against `chalice local`, the way CI does: start the local run command
(`python -m devtools.run`: embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set,
migrations, demo data, `chalice local`) on a free port, wait for /api/health, run scripts/smoke.py
as the demo `editor`, then stop everything that was started.

    python -m deploy.smoke_local [--startup-timeout 300] [--smoke-timeout 180]

Every wait has a deadline. The run command is started in its own session; stopping sends SIGINT to
the whole session (the run command stops `chalice local`, PostgreSQL shuts down fast, Redis saves
and exits), then SIGTERM and SIGKILL to whatever is still there, so nothing outlives this command.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib import error, request

ROOT = Path(__file__).resolve().parent.parent
LOGIN_FILE = ROOT / ".devdata" / "demo-login.txt"
LOG_FILE = ROOT / ".devdata" / "smoke-local.log"


def _default_sigint() -> None:
    """In the child: SIGINT back to its default. A command started in the background by a
    non-interactive shell inherits SIGINT *ignored*, and Python then never turns it into the
    KeyboardInterrupt that makes the run command stop cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(base_url: str) -> bool:
    try:
        with request.urlopen(base_url + "/api/health", timeout=5) as resp:
            return resp.status == 200
    except (error.URLError, OSError):
        return False


def session_members(sid: int) -> list[int]:
    """Every live process of the session `sid` (the run command and all it started)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getsid(pid) == sid and _state(pid) != "Z":
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(process: subprocess.Popen, *, grace: float = 45.0) -> list[int]:
    """SIGINT the session, then SIGTERM, then SIGKILL; returns the pids that needed SIGKILL."""
    sid = process.pid
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10.0)):
        _signal_all(session_members(sid) or [sid], sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            if not session_members(sid):
                return []
            time.sleep(0.2)
    leftovers = session_members(sid)
    _signal_all(leftovers, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    return leftovers


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


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-test the API under chalice local.")
    parser.add_argument("--startup-timeout", type=float, default=300.0,
                        help="seconds for services, migrations, demo data and chalice local (default 300)")
    parser.add_argument("--smoke-timeout", type=float, default=180.0, help="seconds for the smoke test")
    parser.add_argument("--username", default="editor", help="demo user to log in as (default editor)")
    args = parser.parse_args(argv)

    # A SIGTERM (e.g. from an outer `timeout`) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), PYTHONUNBUFFERED="1")
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    servers_before = embedded_servers()
    with open(LOG_FILE, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "devtools.run"], cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_default_sigint)
    try:
        deadline = started + args.startup_timeout
        while not healthy(base_url):
            if process.poll() is not None:
                print(f"the local run command exited with {process.returncode} before answering; "
                      f"its log:\n{tail(LOG_FILE)}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"no healthy answer from {base_url} within {args.startup_timeout:.0f} s; "
                      f"log:\n{tail(LOG_FILE)}", file=sys.stderr)
                return 1
            time.sleep(1)
        print(f"chalice local answered on {base_url} after {time.monotonic() - started:.1f} s", flush=True)
        if "SMOKE_PASSWORD" not in os.environ and not LOGIN_FILE.exists():
            print(f"no {LOGIN_FILE.relative_to(ROOT)} (the database already had users): set SMOKE_PASSWORD",
                  file=sys.stderr)
            return 1
        smoke = [sys.executable, str(ROOT / "scripts" / "smoke.py"), "--base-url", base_url,
                 "--username", args.username, "--wait", "30"]
        if "SMOKE_PASSWORD" not in os.environ:
            smoke += ["--password-file", str(LOGIN_FILE)]
        try:
            return subprocess.run(smoke, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=args.smoke_timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"the smoke test did not finish within {args.smoke_timeout:.0f} s", file=sys.stderr)
            return 1
    finally:
        stop_started = time.monotonic()
        killed = stop_session(process)
        if killed:
            print(f"had to SIGKILL {len(killed)} process(es) of the local run: {killed}", file=sys.stderr)
        servers_left = stop_new_servers(servers_before)
        if servers_left:
            print(f"embedded servers started by this run outlived it: {servers_left}"
                  + (" (stopped)" if os.environ.get("CI") == "true" else " (shared? left running)"),
                  file=sys.stderr)
        print(f"local run stopped in {time.monotonic() - stop_started:.1f} s "
              f"(total {time.monotonic() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
