"""The HTTP middleware: body limits and media type, Chalice's own errors rewritten into the envelope,
500s without internals, X-Request-Id, CORS headers on every answer, one JSON log line per request,
and the order of checks."""

from __future__ import annotations

import json

import pytest
from chalice import BadRequestError
from sqlalchemy import select

from chalicelib.auth import service
from chalicelib.http import MAX_BODY_BYTES
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json
from tests.support import call_app

LOGIN = "/api/auth/login"
SITE = "/api/auth/site"
CORS = {
    "Access-Control-Allow-Origin": "https://app.example.com",
    "Access-Control-Allow-Headers": "Authorization,Content-Type,Idempotency-Key,If-Match,X-Amz-Date,"
    "X-Amz-Security-Token,X-Api-Key,X-Request-Id",
    "Access-Control-Expose-Headers": "ETag,Location,Retry-After,X-Request-Id",
}


def assert_error(response, status, code):
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    body = response.json_body
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert set(body) == {"status", "error"}
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    for name, value in CORS.items():
        assert response.headers[name] == value, name
    assert response.headers["X-Request-Id"]


def raw_post(client, path, body: bytes, content_type: str | None = "application/json", token=None):
    headers = {} if content_type is None else {"Content-Type": content_type}
    if token:
        headers.update(auth(token))
    return client.http.post(path, body=body, headers=headers)


@pytest.fixture
def editor(client):
    site = make_site()
    make_user(sites={site: "editor"})
    return login(client)["token"]


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"{", "Malformed JSON"),
        (b'{"username": "a",}', "Malformed JSON"),
        (b"NaN", "Malformed JSON"),
        (b'{"a": Infinity}', "Malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"", "A JSON object body"),
        (b"   ", "A JSON object body"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"a": "\xc3\x28"}', "not valid UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ],
    ids=[
        "truncated",
        "trailing comma",
        "NaN",
        "Infinity",
        "array",
        "string",
        "null",
        "empty",
        "blank",
        "invalid UTF-8",
        "invalid UTF-8 inside",
        "deep nesting",
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(client, raw, message):
    response = raw_post(client, LOGIN, raw)

    assert_error(response, 400, "VALIDATION_ERROR")
    assert message in response.json_body["error"]["message"]


def test_a_body_of_exactly_256_kib_is_read(client):
    padding = "x" * (MAX_BODY_BYTES - len(json.dumps({"username": "", "password": "p"})))
    raw = json.dumps({"username": padding, "password": "p"}).encode()
    assert len(raw) == MAX_BODY_BYTES

    response = raw_post(client, LOGIN, raw)

    assert_error(response, 400, "VALIDATION_ERROR")  # too long a username, but read


@pytest.mark.parametrize("path", [LOGIN, SITE])
def test_a_body_over_256_kib_is_413_before_it_is_parsed(client, editor, path):
    response = raw_post(client, path, b"{" + b" " * MAX_BODY_BYTES, token=editor)  # not even JSON

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_without_json_content_type_is_415(client, content_type):
    response = raw_post(client, LOGIN, json.dumps({"username": "a", "password": "b"}).encode(), content_type)

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_variants_are_accepted(client, content_type):
    make_user()

    response = raw_post(
        client, LOGIN, json.dumps({"username": "jdoe", "password": PASSWORD}).encode(), content_type
    )

    assert response.status_code == 200


def test_no_body_needs_no_content_type(client, editor):
    assert client.http.post("/api/auth/logout", headers=auth(editor)).status_code == 200


@pytest.mark.parametrize("method,path", [("GET", "/api/auth/me"), ("POST", "/api/auth/logout")])
def test_a_content_type_without_a_body_is_not_refused(client, editor, method, path):
    response = client.http.request(method, path, headers={**auth(editor), "Content-Type": "text/plain"})

    assert response.status_code == 200, response.json_body


# --- Chalice's own errors and ours ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("GET", LOGIN, "POST"),
        ("DELETE", LOGIN, "POST"),
        ("POST", "/api/health", "GET"),
        ("GET", "/api/auth/logout", "POST"),
        ("PUT", "/api/auth/me", "GET"),
    ],
)
def test_a_wrong_method_on_a_known_path_is_405_with_allow(client, method, path, allow):
    response = client.http.request(method, path)

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == allow


def test_an_uncaught_exception_is_500_without_internals(client, editor, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("SELECT password_hash FROM users -- at /work/main/chalicelib/x.py")

    monkeypatch.setattr(service, "me", broken)

    response = client.http.get("/api/auth/me", headers={**auth(editor), "X-Request-Id": "req-500"})

    assert_error(response, 500, "INTERNAL_ERROR")
    assert response.json_body["error"] == {
        "code": "INTERNAL_ERROR",
        "message": "An internal error occurred",
        "request_id": "req-500",
    }
    for leak in (b"password_hash", b"Traceback", b"RuntimeError", b".py"):
        assert leak not in response.body
    assert "req-500" in caplog.text  # the log line ties the bug to the request


def test_a_chalice_view_error_becomes_the_envelope(client, editor, monkeypatch):
    def refuses(*args, **kwargs):
        raise BadRequestError("Chalice's own words")

    monkeypatch.setattr(service, "me", refuses)

    response = client.http.get("/api/auth/me", headers=auth(editor))

    assert_error(response, 400, "VALIDATION_ERROR")
    assert "Code" not in response.json_body


def test_deployed_an_uncaught_exception_is_500_too(app_module, editor, monkeypatch):
    monkeypatch.setattr(service, "me", lambda *a, **k: 1 / 0)

    response = call_app(app_module.app, "GET", "/api/auth/me", token=editor)

    assert response.status_code == 500
    assert response.json_body == {
        "status": "error",
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "An internal error occurred",
            "request_id": response.headers["X-Request-Id"],
        },
    }
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


# --- X-Request-Id and the access log ------------------------------------------------------------


@pytest.mark.parametrize("supplied", ["abc", "A-b_c.9", "x" * 128])
def test_a_sane_request_id_is_echoed(client, supplied, access_log):
    response = client.http.get("/api/health", headers={"X-Request-Id": supplied})

    assert response.headers["X-Request-Id"] == supplied
    assert access_log.records[-1]["request_id"] == supplied


@pytest.mark.parametrize("supplied", ["x" * 129, "has space", "semi;colon", "ünï", "", "a/b", "<script>"])
def test_an_unsafe_request_id_is_replaced(client, supplied, access_log):
    response = client.http.get("/api/health", headers={"X-Request-Id": supplied})

    issued = response.headers["X-Request-Id"]
    assert issued != supplied and len(issued) == 32 and issued.isalnum()
    assert access_log.records[-1]["request_id"] == issued


def test_every_request_gets_its_own_id(client):
    ids = {client.http.get("/api/health").headers["X-Request-Id"] for _ in range(3)}

    assert len(ids) == 3


def test_one_json_log_line_per_request(client, editor, access_log):
    client.http.get("/api/auth/me", headers={**auth(editor), "X-Request-Id": "me-1"})
    client.http.get("/api/auth/me", headers={"Authorization": "Bearer forged", "X-Request-Id": "me-2"})
    post_json(client, LOGIN, {"username": "jdoe"}, **{"X-Request-Id": "login-1"})

    records = access_log.records
    assert len(access_log.lines) == 3
    assert all("\n" not in line for line in access_log.lines)
    ok, refused, invalid = records
    assert {"method", "route", "status", "duration_ms", "request_id", "user_id"} <= set(ok)
    assert (ok["method"], ok["route"], ok["status"], ok["request_id"], ok["user_id"]) == (
        "GET",
        "/api/auth/me",
        200,
        "me-1",
        1,
    )
    assert isinstance(ok["duration_ms"], (int, float)) and ok["duration_ms"] >= 0
    assert (refused["status"], refused["user_id"], refused["request_id"]) == (401, None, "me-2")
    assert (invalid["method"], invalid["route"], invalid["status"]) == ("POST", LOGIN, 400)


def test_the_log_names_the_route_template_not_the_path(client, editor, access_log):
    client.http.get("/api/sites/12345", headers=auth(editor))

    assert access_log.records[-1]["route"] == "/api/sites/{site_id}"


def test_the_log_never_contains_the_token_or_the_password(client, access_log):
    make_user()
    token = login(client)["token"]
    client.http.get("/api/auth/me", headers=auth(token))

    text = "\n".join(access_log.lines)
    assert token not in text and PASSWORD not in text


# --- CORS and content type everywhere -----------------------------------------------------------


def test_success_carries_the_cors_headers_too(client, editor):
    response = client.http.get("/api/auth/me", headers=auth(editor))

    for name, value in CORS.items():
        assert response.headers[name] == value
    assert response.headers["Content-Type"] == "application/json"


def test_one_allowed_origin_is_named_whatever_the_request_origin_without_vary(client, editor):
    response = client.http.get(
        "/api/auth/me", headers={**auth(editor), "Origin": "https://elsewhere.example"}
    )

    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Vary" not in response.headers


TWO = "https://app.example.com,http://localhost:5173"


@pytest.mark.parametrize(
    "origin, named",
    [
        ("http://localhost:5173", "http://localhost:5173"),  # the second listed origin is echoed
        ("https://app.example.com", "https://app.example.com"),
        (
            "https://elsewhere.example",
            "https://app.example.com",
        ),  # not listed: the first, refused by the browser
        (None, "https://app.example.com"),  # no Origin (not a browser's cross-origin call): the first
    ],
)
def test_a_listed_origin_is_echoed_with_vary_origin(client, reconfigure, origin, named):
    reconfigure(CORS_ALLOW_ORIGIN=TWO)
    make_user("jdoe")
    token = login(client)["token"]
    headers = {**auth(token), **({"Origin": origin} if origin else {})}

    for response in (
        client.http.get("/api/auth/me", headers=headers),  # through a view (Chalice adds its own CORS)
        client.http.get("/api/auth/me", headers={**headers, "Authorization": "Bearer forged"}),  # a 401
        client.http.get("/api/health", headers=headers),  # a public route
    ):
        assert response.headers["Access-Control-Allow-Origin"] == named, response.status_code
        assert response.headers["Vary"] == "Origin"
        assert response.headers["Access-Control-Expose-Headers"] == CORS["Access-Control-Expose-Headers"]


# --- order of checks: 401 -> 413 -> 415 -> 403 -> 400 --------------------------------------------


BIG = b"{" + b" " * MAX_BODY_BYTES


def test_401_comes_before_413_and_415(client, editor):
    response = raw_post(client, SITE, BIG, "text/plain", token="forged")

    assert_error(response, 401, "AUTHENTICATION_ERROR")


@pytest.mark.parametrize(
    "path,body,content_type,status",
    [
        ("/api/interactions", BIG, "application/json", 413),
        ("/api/interactions", b"{}", "text/plain", 415),
        (SITE, BIG, "text/plain", 413),
        ("/api/auth/password", b"{}", "text/plain", 415),
    ],
    ids=["413 on a write", "415 on a write", "413 on a site switch", "415 on a password change"],
)
def test_a_deactivated_users_token_is_401_before_413_and_415(
    client, editor, session, path, body, content_type, status
):
    from chalicelib.models import User

    assert raw_post(client, path, body, content_type, token=editor).status_code == status
    user = session.scalars(select(User)).one()
    user.is_active = False
    session.commit()

    assert_error(raw_post(client, path, body, content_type, token=editor), 401, "AUTHENTICATION_ERROR")
    assert client.http.get("/api/auth/me", headers=auth(editor)).status_code == 401


def test_413_comes_before_415(client, editor):
    assert_error(raw_post(client, SITE, BIG, "text/plain", token=editor), 413, "PAYLOAD_TOO_LARGE")
    assert_error(raw_post(client, LOGIN, BIG, None), 413, "PAYLOAD_TOO_LARGE")


def test_415_comes_before_a_malformed_body(client, editor):
    assert_error(raw_post(client, SITE, b"{", "text/plain", token=editor), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(raw_post(client, LOGIN, b"{", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_site_context_403_comes_before_a_malformed_body(client):
    alpha, beta = make_site("Alpha"), make_site("Beta")
    make_user(sites={alpha: "editor", beta: "editor"})
    no_site = login(client)["token"]

    response = raw_post(client, "/api/interactions", b"{", token=no_site)

    assert_error(response, 403, "SITE_CONTEXT_REQUIRED")


def test_role_403_comes_before_a_malformed_body(client):
    site = make_site()
    make_user(sites={site: "viewer"})
    viewer = login(client)["token"]

    assert_error(raw_post(client, "/api/interactions", b"{", token=viewer), 403, "AUTHORIZATION_ERROR")


def test_400_once_everything_before_it_passes(client, editor):
    assert_error(raw_post(client, "/api/interactions", b"{", token=editor), 400, "VALIDATION_ERROR")
    assert_error(raw_post(client, SITE, b"{", token=editor), 400, "VALIDATION_ERROR")


def test_a_malformed_site_choice_is_400_before_the_membership_403(client, editor):
    """Which site is asked for is only known once the body is read."""
    assert_error(post_json(client, SITE, {"site_id": "9999"}, editor), 400, "VALIDATION_ERROR")
    assert_error(post_json(client, SITE, {"site_id": 9999}, editor), 403, "AUTHORIZATION_ERROR")
