"""The authorizer remembers tokens it has verified (a performance measure): a remembered verdict
never outlives the token, and never survives a change of key, issuer or audience."""

from __future__ import annotations

import time

import pytest

from chalicelib import config
from chalicelib.auth import tokens
from tests.factories import auth, login, make_site, make_user


def test_a_remembered_token_is_refused_once_it_expires():
    token, _ = tokens.issue(user_id=1, site_id=None, expires_at=int(time.time()) + 2)
    assert tokens.verify(token).user_id == 1

    time.sleep(max(0.0, tokens.verify(token).expires_at - time.time()) + 0.05)

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("JWT_SECRET", "another-signing-key-" + "y" * 40),
        ("JWT_ISSUER", "another-issuer"),
        ("JWT_AUDIENCE", "another-audience"),
    ],
)
def test_a_remembered_token_is_checked_again_when_the_configuration_changes(monkeypatch, variable, value):
    token, _ = tokens.issue(user_id=1, site_id=None)
    assert tokens.verify(token).user_id == 1

    monkeypatch.setenv(variable, value)
    config.reset_settings()

    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token)


def test_a_remembered_token_is_still_checked_for_revocation(client):
    site_id = make_site("Marketing")
    make_user("jdoe", sites={site_id: "editor"})
    token = login(client)["token"]
    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200

    assert client.http.post("/api/auth/logout", headers=auth(token)).status_code == 200

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 401
