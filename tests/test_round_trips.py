"""Round trips to PostgreSQL and Redis per request, counted at the socket (a relay in front of each
server, devtools/relay.py), for every endpoint. Deployed, each one costs about a millisecond, far
more than the request's CPU: an authenticated read may take at most 2 database and 1 Redis round
trip, a write at most 4 and 1, connection set-up aside (each request is measured warm: its
connection is open and its statements prepared by an identical request before). Login may take the
Redis round trips its lockout needs. The counts are deterministic; the budgets below are the
tightest each endpoint meets today, so a regression fails here even within API.md's caps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from chalicelib import cache, db
from chalicelib.endpoint import REGISTRY
from devtools.relay import Relay
from tests import mailbox
from tests.factories import (
    PASSWORD,
    auth,
    json_headers,
    login,
    make_platform_admin,
    make_site,
    make_user,
    post_json,
)
from tests.interactions.helpers import VALID, insert_rows

READ_CAP, WRITE_CAP, REDIS_CAP = (2, 1), (4, 1), 1


@pytest.fixture
def relays(reconfigure):
    """The app's DATABASE_URL and REDIS_URL pointed at counting relays in front of the test servers."""
    import os

    url = make_url(os.environ["DATABASE_URL"])
    unix_sock = str(url.query.get("unix_sock") or "")
    pg = (
        Relay(upstream_unix=unix_sock)
        if unix_sock
        else Relay(upstream=(url.host or "127.0.0.1", url.port or 5432))
    )
    redis_url = os.environ["REDIS_URL"]
    if redis_url.startswith("unix://"):
        rd = Relay(upstream_unix=urlsplit(redis_url).path)
        relayed_redis = f"redis://127.0.0.1:{rd.port}/0"
    else:
        parts = urlsplit(redis_url)
        rd = Relay(upstream=(parts.hostname or "127.0.0.1", parts.port or 6379))
        relayed_redis = f"redis://127.0.0.1:{rd.port}{parts.path or '/15'}"
    query = {k: v for k, v in url.query.items() if k != "unix_sock"}
    relayed_db = url.set(host="127.0.0.1", port=pg.port, query=query).render_as_string(hide_password=False)
    pg.start(), rd.start()
    reconfigure(DATABASE_URL=relayed_db, REDIS_URL=relayed_redis)
    yield {"db": pg, "redis": rd}
    db.reset_engine()
    cache.reset_redis()
    pg.stop()
    rd.stop()


# Round trips made by an invitation's delivery after its commit (minting and storing the token, then
# clearing the outbox): not counted against the request's budget, and reported on their own.
DELIVERY: dict[str, int] = {"db": 0, "redis": 0}


@pytest.fixture(autouse=True)
def _delivery_counted_apart(monkeypatch, request):
    from chalicelib.sites import invitations

    original = invitations.deliver

    def deliver(session, *, invitation_id):
        found = request.getfixturevalue("relays") if "relays" in request.fixturenames else None
        if found is None:
            return original(session, invitation_id=invitation_id)
        with found["db"].counting() as database, found["redis"].counting() as redis:
            result = original(session, invitation_id=invitation_id)
        DELIVERY["db"] += database["round_trips"]
        DELIVERY["redis"] += redis["round_trips"]
        return result

    monkeypatch.setattr(invitations, "deliver", deliver)


def count(relays: dict[str, Relay], request: Callable[[], Any]) -> tuple[int, int, Any]:
    DELIVERY.update(db=0, redis=0)
    with relays["db"].counting() as database, relays["redis"].counting() as redis:
        response = request()
    assert database["connections"] == 0 and redis["connections"] == 0, "measured with a cold connection"
    if DELIVERY["db"] or DELIVERY["redis"]:
        print(f"ROUNDTRIPS delivery after the commit: {DELIVERY['db']} + {DELIVERY['redis']}")
    return database["round_trips"] - DELIVERY["db"], redis["round_trips"] - DELIVERY["redis"], response


@pytest.fixture
def world(client):
    site = make_site("Marketing")
    other = make_site("Sales")
    admin = make_user("alice", sites={site: "admin", other: "viewer"})
    editor_id = make_user("eddie", sites={site: "editor"})
    ids = insert_rows(site, [{"title": f"Row {i}"} for i in range(30)])
    editor = login(client, "eddie")["token"]
    return {
        "site": site,
        "admin": admin,
        "ids": ids,
        "editor": editor,
        "editor_id": editor_id,
        "admin_token": _site_token(client, login(client, "alice")["token"], site),
    }


def _site_token(client, token, site):
    return post_json(client, "/api/auth/site", {"site_id": site}, token).json_body["data"]["token"]


def _get(client, path, token):
    return lambda: client.http.get(path, headers=auth(token))


def _send(client, method, path, token, body):
    return lambda: getattr(client.http, method.lower())(
        path, body=json.dumps(body), headers=json_headers(token)
    )


# (method, path) -> (scenario builder, (database, redis) budget). A builder gets (client, world) and
# returns a request that can run twice (the warm-up and the counted one).
def _scenarios() -> dict[tuple[str, str], tuple[Callable[..., Callable[[], Any]], tuple[int, int]]]:
    item = "/api/interactions/{interaction_id}"

    def fresh_id(client, w):
        return w["ids"].pop()

    def logout(client, w):
        tokens = [login(client, "eddie")["token"] for _ in range(2)]  # one for the warm-up, one counted
        return lambda: client.http.post("/api/auth/logout", headers=auth(tokens.pop()))

    def change(client, w):
        titles = iter(f"Changed {n}" for n in range(10))
        return lambda: _send(
            client, "PUT", f"/api/interactions/{w['ids'][1]}", w["editor"], {"title": next(titles)}
        )()

    invitations = "/api/sites/{site}/invitations"

    def invite(client, w, email):
        response = _send(
            client,
            "POST",
            invitations.format(site=w["site"]),
            w["admin_token"],
            {"email": email, "role": "viewer"},
        )()
        assert response.status_code == 201, response.json_body
        return response.json_body["data"]["invitation"]

    def create_invitation(client, w):
        emails = iter(f"invited{n}@example.com" for n in range(10))
        return lambda: _send(
            client,
            "POST",
            invitations.format(site=w["site"]),
            w["admin_token"],
            {"email": next(emails), "role": "viewer"},
        )()

    def one_invitation(client, w):
        found = invite(client, w, "one@example.com")
        return _get(client, f"{invitations.format(site=w['site'])}/{found['id']}", w["admin_token"])

    def revoke_invitation(client, w):
        ids = [invite(client, w, f"revoked{n}@example.com")["id"] for n in range(2)]
        return lambda: client.http.delete(
            f"{invitations.format(site=w['site'])}/{ids.pop()}", headers=auth(w["admin_token"])
        )

    def resend_invitation(client, w):
        found = invite(client, w, "again@example.com")
        return lambda: client.http.post(
            f"{invitations.format(site=w['site'])}/{found['id']}/resend", headers=auth(w["admin_token"])
        )

    def preview(client, w):
        invite(client, w, "preview@example.com")
        token = mailbox.token_for("preview@example.com")
        return lambda: post_json(client, "/api/auth/invitations/preview", {"token": token})

    def accept(client, w):
        tokens = []
        for n in range(2):
            invite(client, w, f"joining{n}@example.com")
            tokens.append((n, mailbox.token_for(f"joining{n}@example.com")))

        def request():
            n, token = tokens.pop()
            return post_json(
                client,
                "/api/auth/invitations/accept",
                {"token": token, "username": f"joining{n}", "password": "a new password"},
            )

        return request

    def change_password(client, w):
        state = {"token": login(client, "eddie")["token"], "passwords": [PASSWORD, "another password"]}

        def request():
            current, new = state["passwords"]
            response = _send(
                client,
                "POST",
                "/api/auth/password",
                state["token"],
                {"current_password": current, "new_password": new},
            )()
            if response.status_code == 200:
                state["token"], state["passwords"] = response.json_body["data"]["token"], [new, current]
            return response

        return request

    def create_site(client, w):
        make_platform_admin("alice")
        names = iter(f"New site {n}" for n in range(10))
        return lambda: _send(client, "POST", "/api/sites", w["admin_token"], {"name": next(names)})()

    def edit_site(client, w):
        texts = iter(f"Described {n}" for n in range(10))
        return lambda: _send(
            client, "PUT", f"/api/sites/{w['site']}", w["admin_token"], {"description": next(texts)}
        )()

    def change_role(client, w):
        roles = iter(["viewer", "editor"] * 5)
        return lambda: _send(
            client,
            "PUT",
            f"/api/sites/{w['site']}/users/{w['editor_id']}",
            w["admin_token"],
            {"role": next(roles)},
        )()

    def remove_member(client, w):
        ids = [make_user(f"leaving{n}", sites={w["site"]: "viewer"}) for n in range(2)]
        return lambda: client.http.delete(
            f"/api/sites/{w['site']}/users/{ids.pop()}", headers=auth(w["admin_token"])
        )

    return {
        ("GET", "/api/health"): (lambda c, w: lambda: c.http.get("/api/health"), (1, 1)),
        ("GET", "/api/openapi.json"): (lambda c, w: lambda: c.http.get("/api/openapi.json"), (0, 0)),
        ("POST", "/api/auth/login"): (
            lambda c, w: lambda: post_json(c, "/api/auth/login", {"username": "eddie", "password": PASSWORD}),
            (2, 2),
        ),
        ("GET", "/api/auth/me"): (lambda c, w: _get(c, "/api/auth/me", w["editor"]), (1, 1)),
        ("GET", "/api/auth/sites"): (lambda c, w: _get(c, "/api/auth/sites", w["editor"]), (1, 1)),
        ("POST", "/api/auth/site"): (
            lambda c, w: _send(c, "POST", "/api/auth/site", w["editor"], {"site_id": w["site"]}),
            (1, 1),
        ),
        ("POST", "/api/auth/logout"): (logout, (0, 1)),
        ("GET", "/api/interactions"): (lambda c, w: _get(c, "/api/interactions", w["editor"]), (1, 1)),
        ("POST", "/api/interactions"): (
            lambda c, w: _send(c, "POST", "/api/interactions", w["editor"], VALID),
            (3, 1),
        ),
        ("GET", "/api/interactions/types"): (
            lambda c, w: _get(c, "/api/interactions/types", w["editor"]),
            (1, 1),
        ),
        ("GET", item): (lambda c, w: _get(c, f"/api/interactions/{w['ids'][0]}", w["editor"]), (1, 1)),
        ("PUT", item): (change, (2, 1)),
        ("DELETE", item): (
            lambda c, w: (
                lambda: c.http.delete(f"/api/interactions/{fresh_id(c, w)}", headers=auth(w["editor"]))
            ),
            (2, 1),
        ),
        ("GET", "/api/sites"): (lambda c, w: _get(c, "/api/sites", w["editor"]), (1, 1)),
        ("GET", "/api/sites/{site_id}"): (
            lambda c, w: _get(c, f"/api/sites/{w['site']}", w["editor"]),
            (1, 1),
        ),
        ("GET", "/api/sites/{site_id}/users"): (
            lambda c, w: _get(c, f"/api/sites/{w['site']}/users", w["admin_token"]),
            (2, 1),
        ),
        ("POST", "/api/auth/invitations/preview"): (preview, (1, 1)),
        # A new account: the invitation locked with the address's account (with BEGIN), the
        # account, membership and events, COMMIT; the client's limit and the lockout's reset.
        ("POST", "/api/auth/invitations/accept"): (accept, (3, 2)),
        ("POST", "/api/auth/password"): (change_password, (2, 4)),
        ("POST", "/api/sites"): (create_site, (3, 1)),
        ("PUT", "/api/sites/{site_id}"): (edit_site, (3, 1)),
        # Rights and lock (with BEGIN), the invitation with its outbox row and event, COMMIT; the
        # delivery after the commit is counted apart.
        ("POST", "/api/sites/{site_id}/invitations"): (create_invitation, (3, 1)),
        ("GET", "/api/sites/{site_id}/invitations"): (
            lambda c, w: _get(c, f"/api/sites/{w['site']}/invitations", w["admin_token"]),
            (1, 1),
        ),
        ("GET", "/api/sites/{site_id}/invitations/{invitation_id}"): (one_invitation, (1, 1)),
        ("DELETE", "/api/sites/{site_id}/invitations/{invitation_id}"): (revoke_invitation, (3, 1)),
        ("POST", "/api/sites/{site_id}/invitations/{invitation_id}/resend"): (resend_invitation, (3, 1)),
        ("PUT", "/api/sites/{site_id}/users/{user_id}"): (change_role, (3, 1)),
        ("DELETE", "/api/sites/{site_id}/users/{user_id}"): (remove_member, (3, 1)),
        ("GET", "/api/interactions/{interaction_id}/history"): (
            lambda c, w: _get(c, f"/api/interactions/{w['ids'][0]}/history", w["editor"]),
            (1, 1),
        ),
        ("GET", "/api/sites/{site_id}/audit"): (
            lambda c, w: _get(c, f"/api/sites/{w['site']}/audit", w["admin_token"]),
            (1, 1),
        ),
    }


SCENARIOS = _scenarios()


def test_every_endpoint_has_a_round_trip_budget(app_module):
    assert set(SCENARIOS) == {(method, path) for path, method in REGISTRY}


@pytest.mark.parametrize("key", sorted(SCENARIOS), ids=lambda key: f"{key[0]} {key[1]}")
def test_round_trips_per_request_stay_within_the_budget(client, relays, world, key):
    build, (db_budget, redis_budget) = SCENARIOS[key]
    method, path = key
    public = REGISTRY[(path, method)].public
    write = method != "GET"
    cap_db, cap_redis = WRITE_CAP if write else READ_CAP
    # Login, an invitation's accept and a password change may take the Redis round trips their
    # limits and the sessions' revocation need.
    assert db_budget <= cap_db and (
        redis_budget <= cap_redis
        or path in ("/api/auth/login", "/api/auth/invitations/accept", "/api/auth/password")
    )

    request = build(client, world)
    first = request()  # connects and prepares
    assert first.status_code < 400, first.json_body
    database, redis, response = count(relays, request)

    assert response.status_code < 400, response.json_body
    print(f"ROUNDTRIPS {method} {path}: {database} + {redis}")
    assert database <= db_budget and redis <= redis_budget, (
        f"{method} {path}: {database} database and {redis} Redis round trips (budget {db_budget} + {redis_budget})"
    )
    # The request's one check (revocation and rate limit together), and a password change's lockout
    # and revocations.
    assert public or redis == 1 or path == "/api/auth/password"


def test_a_filtered_page_that_needs_its_total_counted_takes_two(client, relays, world):
    _get(client, "/api/interactions?title=row+2&per_page=5", world["editor"])()  # same statements
    database, redis, response = count(
        relays, _get(client, "/api/interactions?title=row&per_page=6", world["editor"])
    )
    assert response.status_code == 200 and response.json_body["meta"]["pagination"]["total_records"] == 30
    assert (database, redis) == (2, 1)
    # Paging on: the total is remembered while the site is unchanged.
    database, _, _ = count(
        relays, _get(client, "/api/interactions?title=row&per_page=6&page=2", world["editor"])
    )
    assert database == 1


def test_a_create_with_an_idempotency_key_takes_four_and_its_replay_two(client, relays, world):
    def create(key):
        return _send_with(client, "/api/interactions", world["editor"], VALID, key)

    create("warm-up")()
    database, redis, response = count(relays, create("k-1"))
    assert response.status_code == 201
    assert (database, redis) == (4, 1)  # rights and lock (with BEGIN), create, key, COMMIT

    database, redis, replay = count(relays, create("k-1"))
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert (database, redis) <= (3, 1)


def _send_with(client, path, token, body, key):
    return lambda: client.http.post(
        path, body=json.dumps(body), headers=json_headers(token, **{"Idempotency-Key": key})
    )


def test_a_refused_read_costs_no_more_than_an_answered_one(client, relays, world):
    request = _get(client, "/api/interactions?sort_by=password", world["editor"])
    request()
    database, redis, response = count(relays, request)
    assert response.status_code == 400
    assert (database, redis) == (1, 1)


def test_a_body_refused_for_its_size_or_type_reads_only_the_callers_active_flag(client, relays, world):
    """413 and 415 come after a deactivated user's 401: the refusal first reads the caller's row
    (one statement), with the request's one Redis check."""
    too_big = b"{" + b" " * (256 * 1024) + b"}"
    for body, content_type, status in ((too_big, "application/json", 413), (b"{}", "text/plain", 415)):

        def request(body=body, content_type=content_type):
            headers = {**auth(world["editor"]), "Content-Type": content_type}
            return client.http.post("/api/interactions", body=body, headers=headers)

        request()
        database, redis, response = count(relays, request)
        assert response.status_code == status
        assert (database, redis) == (1, 1)


def test_a_refused_logout_costs_its_one_redis_check_and_no_database(client, relays, world):
    def request():
        return client.http.post("/api/auth/logout?scope=all", headers=auth(world["editor"]))

    request()
    database, redis, response = count(relays, request)
    assert response.status_code == 400
    assert (database, redis) == (0, 1)


def test_a_cursor_page_takes_one_and_carries_its_total(client, relays, world):
    """The page after a cursor is one statement at any depth: its total comes with the cursor."""
    first = _get(client, "/api/interactions?title=row&per_page=5", world["editor"])().json_body
    cursor = first["meta"]["pagination"]["next_cursor"]
    _get(client, f"/api/interactions?title=row&per_page=5&cursor={cursor}", world["editor"])()  # prepares
    database, redis, response = count(
        relays, _get(client, f"/api/interactions?title=row&per_page=5&cursor={cursor}", world["editor"])
    )
    assert response.status_code == 200 and response.json_body["meta"]["pagination"]["total_records"] == 30
    assert (database, redis) == (1, 1)


def test_logout_of_every_session_costs_its_one_redis_check(client, relays, world):
    tokens = [login(client, "eddie")["token"] for _ in range(2)]

    def request():
        return _send(client, "POST", "/api/auth/logout", tokens.pop(), {"all": True})()

    request()
    tokens.append(login(client, "eddie")["token"])
    database, redis, response = count(relays, request)
    assert response.status_code == 200
    assert (database, redis) == (0, 1)
