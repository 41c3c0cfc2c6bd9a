"""The local run command (`make run`, devtools/run.py) as a client meets it: API Gateway's answers
with the packaged Gateway Responses, scratch data that never touches .devdata, and a clean stop on
SIGINT or SIGTERM — to the command, to its process group, or to `make` alone."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from deploy.gateway_responses import gateway_responses
from devtools.edge import MAX_PAYLOAD_BYTES
from devtools.local_run import LocalRun, default_sigint
from tests import leftovers

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://frontend.example.org"
pytestmark = pytest.mark.slow


def scratch_env() -> dict[str, str]:
    """The scratch run goes to the tests' PostgreSQL server (its own database) and starts its own
    throwaway Redis: the tests' Redis is emptied before every test."""
    return {
        "DATABASE_URL": os.environ["TEST_ADMIN_DATABASE_URL"],
        "REDIS_URL": "",
        "CORS_ALLOW_ORIGIN": ORIGIN,
    }


def nothing_left(tmp: Path) -> None:
    """A run given TMPDIR=`tmp` left no file there and no process that carries it."""
    assert sorted(p.name for p in tmp.iterdir()) == []
    assert leftovers.marked_processes(tmp) == []


def databases() -> set[str]:
    engine = create_engine(os.environ["TEST_ADMIN_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def send(
    base_url: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            json.loads(raw) if raw else None,
        )
    finally:
        conn.close()


def is_gateway_response(reply: tuple[int, dict[str, str], object], response_type: str) -> bool:
    status, headers, body = reply
    packaged = gateway_responses(ORIGIN)[response_type]
    template = packaged["responseTemplates"]["application/json"]
    return (
        status == int(packaged["statusCode"])
        and headers.get("access-control-allow-origin") == ORIGIN
        and body == json.loads(template.replace("$context.requestId", headers["x-amzn-requestid"]))
    )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    devdata_login = ROOT / ".devdata" / "demo-login.txt"
    before = devdata_login.stat().st_mtime_ns if devdata_login.exists() else None
    tmp = tmp_path_factory.mktemp("run")
    run = LocalRun(extra_env={**scratch_env(), "TMPDIR": str(tmp)}, interactions=20)
    run.start()
    yield run
    status = run.stop()
    assert status == 0, run.tail()
    assert "Stopped cleanly (SIGINT)" in run.output
    nothing_left(tmp)  # its Redis and that Redis's folder in the temp directory are gone
    # Scratch means scratch: the development login was neither written nor replaced.
    after = devdata_login.stat().st_mtime_ns if devdata_login.exists() else None
    assert after == before


def test_gateway_refusals_are_the_packaged_gateway_responses(local_run):
    base = local_run.base_url
    assert is_gateway_response(send(base, "GET", "/api/auth/me"), "UNAUTHORIZED")
    assert is_gateway_response(send(base, "GET", "/api/nowhere"), "MISSING_AUTHENTICATION_TOKEN")
    assert is_gateway_response(
        send(base, "GET", "/api/nowhere", {"Authorization": "Bearer x"}), "MISSING_AUTHENTICATION_TOKEN"
    )
    assert is_gateway_response(
        send(base, "PATCH", "/api/interactions", {"Authorization": "Bearer x"}),
        "MISSING_AUTHENTICATION_TOKEN",
    )
    assert is_gateway_response(send(base, "TRACE", "/api/health"), "MISSING_AUTHENTICATION_TOKEN")
    assert is_gateway_response(
        send(
            base,
            "POST",
            "/api/interactions",
            {"Content-Type": "application/json"},
            b"x" * (MAX_PAYLOAD_BYTES + 1),
        ),
        "REQUEST_TOO_LARGE",
    )


def test_a_bad_token_is_the_apps_own_401_with_cors_and_a_request_id(local_run):
    status, headers, body = send(
        local_run.base_url,
        "GET",
        "/api/auth/me",
        {"Authorization": "Bearer not-a-token", "X-Request-Id": "abc-1"},
    )
    assert status == 401
    assert body["error"]["code"] == "AUTHENTICATION_ERROR"
    assert body["error"]["request_id"] == "abc-1"  # like the gateway's own 401 (no token), its request's id
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["x-request-id"] == "abc-1"
    assert headers["x-amzn-requestid"]


def test_the_scratch_demo_login_works_and_logout_ends_the_session(local_run):
    base = local_run.base_url
    status, _, body = send(
        base,
        "POST",
        "/api/auth/login",
        {"Content-Type": "application/json"},
        json.dumps({"username": "editor", "password": local_run.password}).encode(),
    )
    assert status == 200, body
    token = body["data"]["token"]
    me = send(base, "GET", "/api/auth/me", {"Authorization": f"Bearer {token}"})
    assert me[0] == 200 and me[2]["data"]["user"]["username"] == "editor"
    assert send(base, "POST", "/api/auth/logout", {"Authorization": f"Bearer {token}"})[0] == 200
    assert send(base, "GET", "/api/auth/me", {"Authorization": f"Bearer {token}"})[0] == 401


def test_the_scratch_run_writes_its_messages_to_the_mail_directory_it_was_given(local_run):
    """The seed's invitations go where --mail-directory says (the flows read them there as the
    invitee's mailbox), not to a folder of the run's own under .devdata."""
    parse = BytesParser(policy=policy.default).parsebytes
    recipients = {str(parse(path.read_bytes())["To"]) for path in local_run.mail_directory.glob("*.eml")}
    assert recipients == {"newhire@example.com", "contractor@example.com"}
    assert not (ROOT / ".devdata" / f"run-mail-{local_run.process.pid}").exists()
    assert f"Invitations are written to {local_run.mail_directory}" in local_run.log_text()


def test_sigterm_stops_the_scratch_run_cleanly_and_removes_its_database_and_temp_files(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")  # short: Redis's unix socket will live in it
    # CORS_ALLOW_ORIGIN unset: the local run's default, the usual frontend dev servers.
    env = {**scratch_env(), "TMPDIR": str(tmp_path), "CORS_ALLOW_ORIGIN": ""}
    run = LocalRun(extra_env=env, interactions=0)
    run.start()
    assert "CORS origins: http://localhost:3000, http://localhost:5173;" in run.log_text()
    for origin in ("http://localhost:3000", "http://localhost:5173"):
        _, headers, _ = send(run.base_url, "GET", "/api/health", {"Origin": origin})
        assert (headers["access-control-allow-origin"], headers["vary"]) == (origin, "Origin")
    database = f"run_{run.process.pid}"
    assert database in databases()
    assert list(tmp_path.iterdir())  # its Redis's socket folder, while it runs
    assert run.stop(first=signal.SIGTERM) == 0, run.tail()
    assert "Stopped cleanly (SIGTERM)" in run.output
    assert database not in databases()
    nothing_left(tmp_path)


def ignore_sigint() -> None:
    """In the child: what a non-interactive shell does to a command it starts in the background."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "target", ["make alone", "process group", "process group, started in the background"]
)
def test_make_run_stops_cleanly_on_sigint_to_make_or_its_process_group(target):
    """Started in the background, make itself ignores SIGINT (it keeps an ignored signal ignored),
    so only the process group's SIGINT reaches the run command there: it stops all the same."""
    command = ["make", "--no-print-directory", "run", "RUN_ARGS=--scratch --interactions 0"]
    background = target.endswith("in the background")
    run = LocalRun(
        extra_env=scratch_env(), command=command, preexec_fn=ignore_sigint if background else default_sigint
    )
    run.start()
    make = run.process
    if target == "make alone":
        os.kill(make.pid, signal.SIGINT)  # GNU make does not pass it on: the run command sees make wait
    else:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    status = make.wait(60)
    run.stop()
    if background:
        assert status == 0  # make ignored the signal: its status is the run command's
    expected = "make was interrupted" if target == "make alone" else "SIGINT"
    assert f"Stopped cleanly ({expected})" in run.output, run.output[-2000:]
    assert "Error" not in run.output.split("Stopped cleanly")[1]  # no "make: *** [run] Error ..."
    assert not run.killed


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_make_run_refuses_a_busy_port_before_installing_anything(busy_port, tmp_path):
    venv = tmp_path / "venv"  # would be created by the install step
    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"VENV={venv}"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(busy_port), "HOST": "127.0.0.1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"cannot serve on 127.0.0.1:{busy_port}: Address already in use" in result.stderr
    assert "PORT=" in result.stderr
    assert not venv.exists()


def test_the_run_command_refuses_a_busy_port_before_migrating(busy_port):
    result = subprocess.run(
        [sys.executable, "-m", "devtools.run", "--scratch", "--port", str(busy_port)],
        cwd=ROOT,
        env={**os.environ, **scratch_env()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "PORT=" in result.stderr
    assert "Running upgrade" not in result.stdout + result.stderr
    assert "Log in as" not in result.stdout


def test_stopping_a_session_whose_leader_has_exited_keeps_its_exit_status():
    """A leader that exited before the stop is a zombie, no member of its session: its status is
    still collected."""
    import time

    from devtools.local_run import _state, session_members, stop_session

    process = subprocess.Popen(["sh", "-c", "exit 3"], start_new_session=True)
    deadline = time.monotonic() + 10
    while _state(process.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    # As if it exited just after stop_session's last poll: only a wait collects its status.
    process.poll = lambda: None  # type: ignore[method-assign]

    assert stop_session(process, grace=10) == []
    assert process.returncode == 3
    assert session_members(process.pid) == []


def test_stopping_a_session_that_exits_on_sigint_keeps_its_exit_status():
    from devtools.local_run import session_members, stop_session

    script = "trap 'exit 0' INT; echo ready; while :; do sleep 0.05; done"
    process = subprocess.Popen(
        ["sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"

    assert stop_session(process, grace=10) == []
    assert process.returncode == 0
    assert session_members(process.pid) == []


def test_a_suite_started_with_sigint_ignored_still_stops_what_it_starts_with_sigint():
    """`make test` from a background job (as CI may run it): the suite begins with SIGINT ignored,
    yet what it starts begins with the default disposition, so the shell above, whose `trap` could
    not undo an ignored signal, stops on SIGINT with its own status."""
    test = (
        "tests/devtools/test_local_run.py::test_stopping_a_session_that_exits_on_sigint_keeps_its_exit_status"
    )
    env = {**os.environ, "DATABASE_URL": os.environ["TEST_ADMIN_DATABASE_URL"], "REDIS_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=ignore_sigint,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
