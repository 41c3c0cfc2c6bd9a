"""scripts/smoke.py against the app served the way `chalice local` serves it (Chalice's local
server, in a thread of the test process, on the test database and Redis)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from chalicelib.models import Interaction, Invitation, SiteMembership, User
from tests.factories import PASSWORD, make_site, make_user

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "smoke.py"


@pytest.fixture
def base_url(app_module):
    from chalice.cli.factory import CLIFactory
    from chalice.local import LocalDevServer

    config = CLIFactory(str(ROOT)).create_config_obj("dev")
    server = LocalDevServer(app_module.app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def smoke_module() -> Any:
    spec = importlib.util.spec_from_file_location("smoke_script", SMOKE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke_script"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("smoke_script", None)


def run_smoke(base_url: str, username: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    env["SMOKE_PASSWORD"] = PASSWORD
    return subprocess.run(
        [sys.executable, str(SMOKE), "--base-url", base_url, "--username", username, "--wait", "5", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def interactions_left(session) -> int:
    return session.scalar(select(func.count()).select_from(Interaction))


def test_the_smoke_test_passes_for_an_editor_and_leaves_nothing_behind(base_url, session):
    site = make_site("Marketing")
    make_user("smoke", sites={site: "editor"})
    result = run_smoke(base_url, "smoke", "--origin", "https://app.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed: 9 steps" in result.stdout
    for step in (
        "login",
        "site selection",
        "create interaction",
        "read it back",
        "list with search",
        "update with If-Match",
        "delete, then 404",
        "both tokens of the session refused",
    ):
        assert step in result.stdout
    assert "invitations: skipped, the user is editor of Marketing, not admin" in result.stdout
    assert interactions_left(session) == 0


def _invitations(session):
    return session.execute(select(Invitation.email, Invitation.status)).all()


def test_as_an_admin_it_invites_and_revokes_and_leaves_no_account(base_url, session):
    site = make_site("Marketing")
    make_user("smoke", sites={site: "admin"})
    result = run_smoke(base_url, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed: 10 steps" in result.stdout
    assert "invitation made (no token in sight), listed, revoked" in result.stdout
    assert session.scalar(select(func.count()).select_from(User)) == 1
    assert session.scalar(select(func.count()).select_from(SiteMembership)) == 1
    [(email, status)] = _invitations(session)
    assert email.endswith("@simulator.amazonses.com") and status == "revoked"


def test_a_failure_after_inviting_revokes_the_invitation(base_url, smoke_module, session):
    site = make_site("Marketing")
    make_user("smoke", sites={site: "admin"})

    class BrokenList(smoke_module.Smoke):  # type: ignore[name-defined, misc]  # loaded from its file
        def call(self, method, path, **kwargs):
            if method == "GET" and "/invitations" in path:
                raise smoke_module.SmokeFailure("invitations list: simulated outage")
            return super().call(method, path, **kwargs)

    with pytest.raises(smoke_module.SmokeFailure, match="simulated outage"):
        smoke_module.run(
            BrokenList(base_url), username="smoke", password=PASSWORD, site_wanted=None, wait_seconds=5
        )
    assert [status for _, status in _invitations(session)] == ["revoked"]


def test_a_multi_site_user_picks_the_site_named(base_url):
    first, second = make_site("Alpha"), make_site("Beta")
    make_user("smoke", sites={first: "viewer", second: "admin"})
    result = run_smoke(base_url, "smoke", "--site", "Beta")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "site selection: Beta as admin" in result.stdout


def test_a_viewer_cannot_run_it_and_is_told_why(base_url, session):
    make_user("watcher", sites={make_site("Marketing"): "viewer"})
    result = run_smoke(base_url, "watcher")
    assert result.returncode == 1
    assert "needs editor or admin" in result.stderr
    assert interactions_left(session) == 0


def test_a_wrong_password_fails_at_login(base_url):
    make_user("smoke", password="something else entirely", sites={make_site("Marketing"): "editor"})
    result = run_smoke(base_url, "smoke")
    assert result.returncode == 1
    assert "login: expected 200, got 401" in result.stderr


def test_no_server_fails_within_the_wait(smoke_module):
    smoke = smoke_module.Smoke("http://127.0.0.1:9", timeout=1)
    with pytest.raises(smoke_module.SmokeFailure, match="no answer"):
        smoke_module.wait_for_health(smoke, 0)


def test_a_failure_midway_deletes_what_was_created_and_ends_the_session(base_url, smoke_module, session):
    site = make_site("Marketing")
    make_user("smoke", sites={site: "editor"})
    tokens = set()

    class BrokenList(smoke_module.Smoke):  # type: ignore[name-defined, misc]  # loaded from its file
        def call(self, method, path, **kwargs):
            if kwargs.get("token"):
                tokens.add(kwargs["token"])
            if path.startswith("/api/interactions?search="):
                raise smoke_module.SmokeFailure("list: simulated outage")
            return super().call(method, path, **kwargs)

    smoke = BrokenList(base_url)
    with pytest.raises(smoke_module.SmokeFailure, match="simulated outage"):
        smoke_module.run(smoke, username="smoke", password=PASSWORD, site_wanted=None, wait_seconds=5)
    assert any(line.startswith("ok  create interaction") for line in smoke.log)
    assert interactions_left(session) == 0
    assert len(tokens) == 2  # the login's token and the site-scoped one
    for token in tokens:
        assert smoke_module.Smoke(base_url).call("GET", "/api/auth/me", token=token).status == 401
