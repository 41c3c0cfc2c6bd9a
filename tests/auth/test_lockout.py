"""Login lockout: 5 consecutive failures per username (known or not) lock it for 15 minutes, even
against the right password; a success resets the count; `cli unlock` lifts a lock; concurrent
guesses cannot get more than 5 passwords checked."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from chalicelib import cli
from chalicelib.auth import limits, passwords, service
from chalicelib.config import get_settings
from chalicelib.errors import AccountLocked, AuthenticationFailed, ServiceUnavailable
from tests.factories import PASSWORD, make_user, post_json

IP = "203.0.113.10"


def _login(client, username="jdoe", password=PASSWORD):
    return post_json(client, "/api/auth/login", {"username": username, "password": password})


def _fail(client, times, username="jdoe"):
    for _ in range(times):
        response = _login(client, username, "wrong password")
        assert response.status_code == 401, response.json_body


def _assert_locked(response, max_seconds=900):
    assert response.status_code == 429, response.json_body
    assert response.json_body["error"]["code"] == "ACCOUNT_LOCKED"
    assert 1 <= int(response.headers["Retry-After"]) <= max_seconds
    assert "Access-Control-Allow-Origin" in response.headers


def test_five_failures_lock_the_account_even_for_the_right_password(client):
    make_user()
    _fail(client, 5)

    _assert_locked(_login(client))


def test_four_failures_do_not_lock(client):
    make_user()
    _fail(client, 4)

    assert _login(client).status_code == 200


def test_the_lock_lasts_the_lockout_period(client, redis_client):
    make_user()
    _fail(client, 5)

    response = _login(client)

    _assert_locked(response)
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert 890 <= redis_client.ttl("login:failures:jdoe") <= 900


def test_unknown_usernames_are_locked_too(client):
    _fail(client, 5, "nobody")

    _assert_locked(_login(client, "nobody"))


def test_spellings_of_one_username_are_counted_together(client):
    make_user("JDoe")
    _fail(client, 2, "JDoe")
    _fail(client, 2, "jdoe")
    _fail(client, 1, " JDOE ")

    _assert_locked(_login(client, "jdoe"))
    _assert_locked(_login(client, "JDoe"))


def test_a_success_resets_the_count(client):
    make_user()
    _fail(client, 4)
    assert _login(client).status_code == 200

    _fail(client, 4)
    assert _login(client).status_code == 200


def test_a_locked_account_does_not_check_the_password(client, monkeypatch):
    make_user()
    _fail(client, 5)
    monkeypatch.setattr(passwords, "verify_password", lambda *a: pytest.fail("password checked"))

    _assert_locked(_login(client))


def test_other_usernames_are_not_affected(client):
    make_user("jdoe")
    make_user("alice")
    _fail(client, 5, "jdoe")

    assert _login(client, "alice").status_code == 200


def test_cli_unlock_lifts_the_lock(client, capsys):
    make_user("JDoe")
    _fail(client, 5)
    _assert_locked(_login(client))

    assert cli.main(["unlock", "JDOE"]) == 0

    assert "may log in again" in capsys.readouterr().out
    assert _login(client).status_code == 200


def test_the_lock_expires_by_itself(client, reconfigure, redis_client):
    reconfigure(LOGIN_LOCKOUT_SECONDS="2")
    make_user()
    for _ in range(5):  # five failures without the argon2 time, so the lock is fresh when checked
        limits.reserve_login_attempt(IP, "jdoe")
    _assert_locked(_login(client), max_seconds=2)

    deadline = time.time() + 5
    while redis_client.exists("login:failures:jdoe") and time.time() < deadline:
        time.sleep(0.1)

    assert _login(client).status_code == 200


def test_login_max_failures_is_configurable(client, reconfigure):
    reconfigure(LOGIN_MAX_FAILURES="2")
    make_user()
    _fail(client, 2)

    _assert_locked(_login(client))


def test_twenty_concurrent_wrong_passwords_get_at_most_five_checked(monkeypatch):
    """The attempt is reserved atomically before the password is checked."""
    make_user()
    checked = []
    lock = threading.Lock()
    real = passwords.verify_password

    def counting(password_hash, password):
        with lock:
            checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    start = threading.Barrier(20)
    outcomes: list[str] = []

    # A connection per thread: the app's pool is sized for one request per container, and a
    # thread waiting for a connection under load would fail for a reason that is not the test's.
    engine = create_engine(get_settings().resolved_database_url(), pool_size=20, max_overflow=0)

    def attempt(i: int) -> None:
        start.wait()
        try:
            with Session(engine) as session:
                service.login(
                    session, source_ip=IP, username="JDoe" if i % 2 else "jdoe", password=f"wrong {i}"
                )
            outcomes.append("ok")
        except AccountLocked:
            outcomes.append("locked")
        except AuthenticationFailed:
            outcomes.append("failed")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        engine.dispose()

    assert len(checked) == 5
    assert sorted(outcomes) == ["failed"] * 5 + ["locked"] * 15


def test_a_database_failure_does_not_count_as_a_failed_login(client, monkeypatch, redis_client):
    make_user()

    def unavailable(*args, **kwargs):
        raise ServiceUnavailable("The database is unavailable; try again shortly")

    monkeypatch.setattr(service, "find_user", unavailable)
    for _ in range(6):
        response = _login(client)
        assert response.status_code == 503
        assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    monkeypatch.undo()

    assert redis_client.get("login:failures:jdoe") in (None, "0")
    assert _login(client).status_code == 200


# --- the Lua scripts themselves --------------------------------------------------------------


def test_reserve_counts_then_refuses_with_the_time_left(redis_client):
    for _ in range(5):
        limits.reserve_login_attempt(IP, "jdoe")
    assert redis_client.get("login:failures:jdoe") == "5"

    with pytest.raises(AccountLocked) as locked:
        limits.reserve_login_attempt(IP, "JDOE")

    assert 899 <= locked.value.retry_after <= 900
    assert redis_client.get("login:failures:jdoe") == "5"  # a refused attempt is not counted


def test_refused_attempts_do_not_extend_the_lock(redis_client):
    for _ in range(5):
        limits.reserve_login_attempt(IP, "jdoe")
    redis_client.expire("login:failures:jdoe", 100)

    for _ in range(3):
        with pytest.raises(AccountLocked):
            limits.reserve_login_attempt(IP, "jdoe")

    assert 98 <= redis_client.ttl("login:failures:jdoe") <= 100


def test_a_counter_without_expiry_gets_one_instead_of_locking_for_ever(redis_client):
    redis_client.set("login:failures:jdoe", "5")

    with pytest.raises(AccountLocked) as locked:
        limits.reserve_login_attempt(IP, "jdoe")

    assert locked.value.retry_after == 900
    assert 899 <= redis_client.ttl("login:failures:jdoe") <= 900


@pytest.mark.parametrize("left_ms,expected", [(400, 0), (1300, 1), (1900, 1), (11_500, 11)])
def test_retry_after_is_the_whole_seconds_left_on_the_lock_never_more(redis_client, left_ms, expected):
    redis_client.set("login:failures:jdoe", "5", px=left_ms)

    with pytest.raises(AccountLocked) as locked:
        limits.reserve_login_attempt(IP, "jdoe")

    assert locked.value.retry_after == expected
    assert locked.value.headers["Retry-After"] == str(expected)


def test_release_gives_back_one_attempt_and_never_goes_below_zero(redis_client):
    limits.reserve_login_attempt(IP, "jdoe")
    limits.release_login_attempt("jdoe")
    limits.release_login_attempt("jdoe")

    assert int(redis_client.get("login:failures:jdoe")) == 0


def test_clear_resets_the_count(redis_client):
    for _ in range(5):
        limits.reserve_login_attempt(IP, "jdoe")

    limits.clear_login_failures(" JDoe ")

    limits.reserve_login_attempt(IP, "jdoe")
    assert redis_client.get("login:failures:jdoe") == "1"
