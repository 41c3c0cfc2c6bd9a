"""Login timing: an unknown username, a known one with a wrong password and a deactivated user must
take about the same time (API.md), or the response time tells which usernames exist.

Timing on a shared machine is noisy, so this prints its figures and fails only on a gross gap (one
case under half the median of another), which is what skipping the password hash for unknown
users would look like."""

from __future__ import annotations

import statistics
import time

import pytest

from chalicelib import config
from tests.factories import make_site, make_user, post_json

ROUNDS = 5


@pytest.fixture
def generous_limits(monkeypatch):
    monkeypatch.setenv("LOGIN_RATE_PER_MINUTE", "100000")
    monkeypatch.setenv("LOGIN_MAX_FAILURES", "100000")
    config.reset_settings()
    yield
    config.reset_settings()


def test_unknown_and_known_usernames_take_similar_time(client, generous_limits, capsys):
    site = make_site("Marketing")
    make_user("known", sites={site: "editor"})
    make_user("inactive", active=False, sites={site: "editor"})
    cases = {
        "unknown user": {"username": "nobody-here", "password": "wrong password 1"},
        "known, wrong password": {"username": "known", "password": "wrong password 1"},
        "deactivated user": {"username": "inactive", "password": "correct horse battery staple"},
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    post_json(client, "/api/auth/login", cases["known, wrong password"])  # warm-up
    for _ in range(ROUNDS):
        for name, body in cases.items():  # interleaved, so drift hits every case alike
            started = time.perf_counter()
            response = post_json(client, "/api/auth/login", body)
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 401

    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    with capsys.disabled():
        print(
            f"\nlogin timing (ms, median of {ROUNDS}):",
            ", ".join(f"{name} {ms:.1f}" for name, ms in medians.items()),
            f"| spread {max(medians.values()) / min(medians.values()):.2f}x",
        )
    assert max(medians.values()) < 2 * min(medians.values()), medians
