"""A flood from a stolen token must not stop its owner from ending sessions: logout and password
changes are never refused by the per-user rate limit (API_RATE_PER_MINUTE), nor counted towards it,
while a password change keeps the login lockout. The thief here floods `GET /api/auth/me` from 8
threads, as the attack did, through the handler the deployed way (authorizer, then the API)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from chalicelib.auth import limits
from tests.factories import PASSWORD, login, make_site, make_user
from tests.support import call_app, json_request

ME, LOGOUT, PASSWORD_CHANGE = "/api/auth/me", "/api/auth/logout", "/api/auth/password"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def frozen_window(monkeypatch):
    """Mid-minute, so the flood and the owner's requests fall in one fixed window."""
    now = (int(time.time()) // 60) * 60 + 30
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now))


@pytest.fixture
def stolen(client, reconfigure):
    """(the thief's token, the owner's token): two sessions of one account, the limit small."""
    reconfigure(API_RATE_PER_MINUTE="20")
    site = make_site()
    make_user("jdoe", sites={site: "editor"})
    return login(client)["token"], login(client)["token"]


def _flood(app, token, *, threads=8, each=85):
    """The thief's requests: 8 threads of 85 `GET /api/auth/me`; their statuses."""

    def burst(_):
        return [call_app(app, "GET", ME, token=token).status_code for _ in range(each)]

    with ThreadPoolExecutor(threads) as pool:
        return [status for statuses in pool.map(burst, range(threads)) for status in statuses]


def _post(app, path, token, body):
    return call_app(app, "POST", path, token=token, **json_request(body))


def test_the_flood_is_limited_but_its_owner_still_logs_out_every_session(app_module, stolen):
    thief, owner = stolen
    statuses = _flood(app_module.app, thief)
    assert statuses.count(200) == 20 and statuses.count(429) == 8 * 85 - 20
    assert call_app(app_module.app, "GET", ME, token=owner).status_code == 429  # the owner is limited too

    ended = _post(app_module.app, LOGOUT, owner, {"all": True})

    assert ended.status_code == 200, ended.json_body
    assert call_app(app_module.app, "GET", ME, token=thief).status_code == 401
    assert call_app(app_module.app, "GET", ME, token=owner).status_code == 401


def test_a_flooded_owner_ends_their_own_session(app_module, stolen):
    thief, owner = stolen
    _flood(app_module.app, thief, threads=2, each=15)

    assert call_app(app_module.app, "POST", LOGOUT, token=owner).status_code == 200
    assert call_app(app_module.app, "GET", ME, token=owner).status_code == 401


def test_a_flooded_owner_changes_the_password_and_the_thief_is_out(app_module, stolen):
    thief, owner = stolen
    _flood(app_module.app, thief)

    changed = _post(
        app_module.app, PASSWORD_CHANGE, owner, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert changed.status_code == 200, changed.json_body
    assert call_app(app_module.app, "GET", ME, token=thief).status_code == 401
    assert _flood(app_module.app, thief, threads=1, each=3) == [401, 401, 401]


def test_logouts_and_password_changes_do_not_count_towards_the_limit(app_module, client, stolen):
    thief, owner = stolen
    for _ in range(3):
        wrong = _post(
            app_module.app,
            PASSWORD_CHANGE,
            owner,
            {"current_password": "not it", "new_password": NEW_PASSWORD},
        )
        assert wrong.status_code == 400
    assert call_app(app_module.app, "POST", LOGOUT, token=login(client)["token"]).status_code == 200

    # 20 requests left in the window, whatever the owner did above
    assert _flood(app_module.app, thief, threads=1, each=21).count(200) == 20


def test_a_flooded_password_change_keeps_the_login_lockout(app_module, stolen):
    """The thief cannot guess the password through the exemption: wrong current passwords lock
    the account as failed logins do (429 ACCOUNT_LOCKED, even with the right one)."""
    thief, owner = stolen
    _flood(app_module.app, thief, threads=2, each=15)
    for _ in range(5):
        wrong = _post(
            app_module.app,
            PASSWORD_CHANGE,
            thief,
            {"current_password": "guess", "new_password": NEW_PASSWORD},
        )
        assert wrong.status_code == 400
        assert wrong.json_body["error"]["details"][0]["field"] == "current_password"

    locked = _post(
        app_module.app, PASSWORD_CHANGE, owner, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert locked.status_code == 429
    assert locked.json_body["error"]["code"] == "ACCOUNT_LOCKED"
    assert int(locked.headers["Retry-After"]) > 60
    # and logout with "all" still ends every session: the token alone, no password
    assert _post(app_module.app, LOGOUT, owner, {"all": True}).status_code == 200
    assert call_app(app_module.app, "GET", ME, token=thief).status_code == 401


def test_a_revoked_token_is_still_401_not_an_exempt_success(app_module, stolen):
    thief, _ = stolen
    assert call_app(app_module.app, "POST", LOGOUT, token=thief).status_code == 200

    again = call_app(app_module.app, "POST", LOGOUT, token=thief)
    changed = _post(
        app_module.app, PASSWORD_CHANGE, thief, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert again.status_code == 401 and changed.status_code == 401
    assert changed.json_body["error"]["code"] == "AUTHENTICATION_ERROR"
