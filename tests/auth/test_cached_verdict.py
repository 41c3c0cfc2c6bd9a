"""API Gateway may reuse the authorizer's answer for one Authorization header for minutes
(AUTHORIZER_CACHE_SECONDS). The API Lambda therefore checks on every request what a cached verdict
cannot know — expiry, a retired key, revocation, the user's active flag and the site role — so a
logout, an expired token, a deactivated user and a removed membership are refused on the next
request even when the verdict comes from the cache. Here the verdict is taken once from the real
authorizer and replayed, stringified, as the cache would."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, update

from chalicelib import config
from chalicelib.auth import guard, tokens
from chalicelib.db import session_scope
from chalicelib.models import SiteMembership, User
from tests.factories import make_site, make_user
from tests.support import call_app, gateway_context, run_authorizer

ME, LIST = "/api/auth/me", "/api/interactions"


@pytest.fixture
def cached(app_module):
    """(user id, site id, token, the cached verdict for its header)."""
    site = make_site()
    user = make_user(sites={site: "editor"})
    token, _ = tokens.issue(user_id=user, site_id=site)
    return user, site, token, gateway_context(run_authorizer(f"Bearer {token}"))


def _call(app_module, token, verdict, resource=ME, method="GET"):
    """A request with the token's header, answered by the API with the cached verdict."""
    return call_app(app_module.app, method, resource, token=token, authorizer=dict(verdict))


def test_a_cached_verdict_is_accepted_while_nothing_changed(app_module, cached):
    _, _, token, verdict = cached
    for _ in range(3):
        assert _call(app_module, token, verdict).status_code == 200


def test_a_logged_out_session_is_refused_with_a_cached_verdict(app_module, cached):
    _, _, token, verdict = cached
    assert _call(app_module, token, verdict, "/api/auth/logout", "POST").status_code == 200

    refused = _call(app_module, token, verdict)
    assert refused.status_code == 401
    assert refused.json_body["error"]["code"] == "AUTHENTICATION_ERROR"


def test_an_expired_token_is_refused_though_its_verdict_is_cached(app_module, cached, monkeypatch):
    _, _, token, verdict = cached
    monkeypatch.setattr(guard, "time", SimpleNamespace(time=lambda: int(verdict["expires_at"]) + 1))

    assert _call(app_module, token, verdict).status_code == 401


def test_a_deactivated_user_is_refused_with_a_cached_verdict(app_module, cached):
    user, _, token, verdict = cached
    with session_scope() as s:
        s.execute(update(User).where(User.id == user).values(is_active=False))

    assert _call(app_module, token, verdict).status_code == 401


def test_a_removed_membership_loses_the_site_with_a_cached_verdict(app_module, cached):
    user, site, token, verdict = cached
    assert _call(app_module, token, verdict, LIST).status_code == 200
    with session_scope() as s:
        s.execute(delete(SiteMembership).where(SiteMembership.user_id == user))

    refused = _call(app_module, token, verdict, LIST)
    assert refused.status_code == 403
    assert refused.json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"
    assert _call(app_module, token, verdict).json_body["data"]["current_site"] is None


def test_a_password_change_ends_sessions_with_cached_verdicts(app_module, cached):
    user, _, token, verdict = cached
    from chalicelib.auth.sessions import revoke_all_sessions

    time.sleep(0.002)  # the session began a moment before the change
    revoke_all_sessions(user)

    assert _call(app_module, token, verdict).status_code == 401


def test_a_retired_key_is_refused_though_its_verdict_is_cached(app_module, cached, reconfigure):
    _, _, token, verdict = cached
    reconfigure(JWT_SECRET="a-new-signing-key-" + "y" * 40, JWT_PREVIOUS_SECRET=None)
    tokens._last_refresh = 0.0

    assert _call(app_module, token, verdict).status_code == 401


def test_during_a_rotation_a_verdict_for_the_previous_key_still_works(app_module, cached, reconfigure):
    _, _, token, verdict = cached
    old = config.get_settings().signing_key()
    reconfigure(JWT_SECRET="a-new-signing-key-" + "y" * 40, JWT_PREVIOUS_SECRET=old)

    assert _call(app_module, token, verdict).status_code == 200
