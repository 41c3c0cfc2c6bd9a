"""A real browser on another origin against the local run: what a frontend can do and read.

The page (page.html, served from its own port) calls the API with `fetch`; every assertion is on
what that call returned inside the page — the status, the headers CORS lets the page see, the
parsed body — or on the browser refusing the call. Chromium enforces CORS itself: a request with
any header the preflight did not allow, or an error without CORS headers, never reaches the page.
"""

from __future__ import annotations

import uuid
from typing import Any

ALLOWED = ["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-Id"]
NEW = {
    "title": "Browser meeting",
    "type": "Meeting",
    "lead": "Pat Page",
    "start_datetime": "2026-05-01T14:00",
    "timezone": "Europe/Paris",
}


def call(page: Any, method: str, path: str, **options: Any) -> dict[str, Any]:
    return page.evaluate("([m, p, o]) => window.call(m, p, o)", [method, path, options])


def readable(reply: dict[str, Any], status: int, code: str | None = None) -> dict[str, Any]:
    """The page got `status` with a JSON body it could read (so the CORS headers were there)."""
    assert reply["ok"], reply.get("error")
    assert reply["status"] == status, reply
    assert reply["headers"]["content-type"].startswith("application/json")
    assert isinstance(reply["body"], dict), reply["text"][:200]
    if code is not None:
        assert reply["body"]["status"] == "error"
        assert reply["body"]["error"]["code"] == code, reply["body"]
    return reply["body"]


def login(page: Any, username: str, password: str) -> dict[str, Any]:
    return readable(
        call(page, "POST", "/api/auth/login", body={"username": username, "password": password}), 200
    )


def site_token(page: Any, password: str) -> str:
    """demo belongs to three sites: log in (no site yet), then switch to the first one."""
    data = login(page, "demo", password)["data"]
    assert data["current_site"] is None and len(data["sites"]) == 3
    switched = readable(
        call(page, "POST", "/api/auth/site", token=data["token"], body={"site_id": data["sites"][0]["id"]}),
        200,
    )["data"]
    assert switched["current_site"]["id"] == data["sites"][0]["id"]
    return switched["token"]


def test_a_frontend_on_another_origin_logs_in_works_and_logs_out(page, api):
    token = site_token(page, api.password)
    listed = readable(call(page, "GET", "/api/interactions?per_page=5", token=token), 200)
    assert len(listed["data"]["interactions"]) == 5
    assert listed["meta"]["pagination"]["per_page"] == 5

    key = f"browser-{uuid.uuid4().hex}"
    created = call(page, "POST", "/api/interactions", token=token, body=NEW, headers={"Idempotency-Key": key})
    interaction = readable(created, 201)["data"]["interaction"]
    assert created["headers"]["etag"] == '"1"'  # exposed: the page can read it
    assert created["headers"]["location"].endswith(f"/api/interactions/{interaction['id']}")
    replayed = call(
        page, "POST", "/api/interactions", token=token, body=NEW, headers={"Idempotency-Key": key}
    )
    assert readable(replayed, 201)["data"]["interaction"]["id"] == interaction["id"]

    path = f"/api/interactions/{interaction['id']}"
    read = call(page, "GET", path, token=token)
    etag = read["headers"]["etag"]
    request_id = f"page-{uuid.uuid4().hex[:12]}"
    # Every header the contract allows, at once: Chromium preflights it and sends it only if allowed.
    updated = call(
        page,
        "PUT",
        path,
        token=token,
        body={"title": "Renamed in the browser"},
        headers={"If-Match": etag, "X-Request-Id": request_id, "Idempotency-Key": "ignored-on-put"},
    )
    assert readable(updated, 200)["data"]["interaction"]["title"] == "Renamed in the browser"
    assert updated["headers"]["etag"] == '"2"'
    assert updated["headers"]["x-request-id"] == request_id

    stale = readable(
        call(page, "PUT", path, token=token, body={"title": "Too late"}, headers={"If-Match": etag}),
        412,
        "PRECONDITION_FAILED",
    )
    assert "current version" in stale["error"]["message"]
    unquoted = readable(
        call(page, "PUT", path, token=token, body={"title": "Too late"}, headers={"If-Match": "2"}),
        412,
        "PRECONDITION_FAILED",
    )
    assert "entity tags are quoted" in unquoted["error"]["message"]

    readable(call(page, "DELETE", path, token=token, headers={"If-Match": '"2"'}), 200)
    assert readable(call(page, "POST", "/api/auth/logout", token=token), 200)["data"]["message"]
    readable(call(page, "GET", "/api/auth/me", token=token), 401, "AUTHENTICATION_ERROR")


def test_the_preflight_allows_exactly_the_contracts_headers(page, api):
    headers = {name: "1" for name in ALLOWED if name != "Authorization"}
    headers["Content-Type"] = "application/json"
    reply = call(
        page, "POST", "/api/auth/login", headers=headers, body={"username": "nobody", "password": "x"}
    )
    readable(reply, 401, "AUTHENTICATION_ERROR")  # every allowed header passed the preflight
    refused = call(page, "GET", "/api/health", headers={"X-Not-Allowed": "1"})
    assert not refused["ok"] and "TypeError" in refused["error"]  # the browser refused, as it must


def test_errors_are_readable_json_with_cors(page, api):
    token = site_token(page, api.password)
    missing = call(page, "GET", "/api/auth/me")  # no token: API Gateway's own answer
    body = readable(missing, 401, "AUTHENTICATION_ERROR")
    assert body["error"]["request_id"] == missing["headers"]["x-amzn-requestid"]
    bad_token = call(page, "GET", "/api/auth/me", token="not.a.token")  # our own 401: the same field
    body = readable(bad_token, 401, "AUTHENTICATION_ERROR")
    assert body["error"]["request_id"] == bad_token["headers"]["x-request-id"]
    readable(call(page, "GET", "/api/no-such-route"), 404, "RESOURCE_NOT_FOUND")
    readable(
        call(
            page,
            "POST",
            "/api/interactions",
            token=token,
            rawBytes=256 * 1024 + 1,
            headers={"Content-Type": "application/json"},
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    readable(
        call(
            page,
            "POST",
            "/api/interactions",
            token=token,
            rawBytes=10 * 1024 * 1024 + 1,
            headers={"Content-Type": "application/json"},
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    readable(
        call(
            page,
            "POST",
            "/api/interactions",
            token=token,
            raw="title=x",
            headers={"Content-Type": "text/plain"},
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


def test_a_locked_account_is_a_429_whose_retry_after_the_page_can_read(page, api):
    for _ in range(5):
        readable(
            call(page, "POST", "/api/auth/login", body={"username": "viewer", "password": "wrong"}),
            401,
            "AUTHENTICATION_ERROR",
        )
    locked = call(page, "POST", "/api/auth/login", body={"username": "viewer", "password": api.password})
    readable(locked, 429, "ACCOUNT_LOCKED")
    assert 0 < int(locked["headers"]["retry-after"]) <= 900


def test_an_invitation_from_the_console_is_accepted_by_a_page_on_another_origin(page, api):
    """The demo data invites contractor@example.com; its accept link is on the local run's console.
    A frontend on another origin previews it, accepts it with a new account and works as it."""
    token = api.invitation_token("contractor@example.com")
    preview = readable(call(page, "POST", "/api/auth/invitations/preview", body={"token": token}), 200)[
        "data"
    ]
    assert preview["email"] == "contractor@example.com" and preview["account_exists"] is False
    username = f"contractor{uuid.uuid4().hex[:6]}"
    accepted = readable(
        call(
            page,
            "POST",
            "/api/auth/invitations/accept",
            body={"token": token, "username": username, "password": "a password of my own"},
        ),
        200,
    )["data"]
    assert accepted["current_site"]["id"] == preview["site"]["id"]
    assert accepted["current_site"]["role"] == preview["role"] == "editor"
    me = readable(call(page, "GET", "/api/auth/me", token=accepted["token"]), 200)["data"]
    assert me["user"]["username"] == username
    used = readable(
        call(page, "POST", "/api/auth/invitations/preview", body={"token": token}), 400, "VALIDATION_ERROR"
    )
    assert used["error"]["details"][0]["field"] == "token"


def test_a_frontend_on_the_second_allowed_origin_works_too(second_page, api):
    """CORS_ALLOW_ORIGIN lists two origins: the second one's preflights and the application's
    answers name it (Chromium checks), so it logs in, lists and reads the app's own errors."""
    token = site_token(second_page, api.password)
    listed = readable(call(second_page, "GET", "/api/interactions?per_page=2", token=token), 200)
    assert len(listed["data"]["interactions"]) == 2
    readable(call(second_page, "GET", "/api/auth/me", token="not.a.token"), 401, "AUTHENTICATION_ERROR")
    # API Gateway's own answers (here: no token) are static, deployed as locally: they name the first
    # origin, so this page cannot read them (docs/deployment.md).
    refused = call(second_page, "GET", "/api/auth/me")
    assert not refused["ok"] and "TypeError" in refused["error"]


def test_an_origin_that_is_not_listed_is_refused_by_the_browser(unlisted_page):
    refused = call(unlisted_page, "GET", "/api/health")
    assert not refused["ok"] and "TypeError" in refused["error"]
    refused = call(unlisted_page, "POST", "/api/auth/login", body={"username": "demo", "password": "x"})
    assert not refused["ok"] and "TypeError" in refused["error"]
