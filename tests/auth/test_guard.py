"""The per-request checks (chalicelib/auth/guard.py), as the endpoint runs them: the Redis script
travels while the route's read waits on PostgreSQL, and its verdict is settled right after that
statement — before the view runs, and before any error is answered. So a revoked session or a rate
limit still wins over every other answer, and nothing is written, sent or called for a request
they refuse."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event, func, select

from chalicelib import db
from chalicelib.auth import sessions, tokens
from chalicelib.db import session_scope
from chalicelib.models import Invitation
from tests import mailbox
from tests.factories import auth, json_headers
from tests.interactions.helpers import VALID, insert_rows, make_world, stored


@pytest.fixture
def world():
    return make_world()


def _revoke(token):
    claims = tokens.verify(token)
    sessions.revoke_session(claims.session_id, claims.expires_at)


def test_a_revoked_session_wins_over_a_malformed_body(client, world):
    token = world.token("editor")
    _revoke(token)
    response = client.http.post("/api/interactions", body="{not json", headers=json_headers(token))
    assert response.status_code == 401


def test_a_revoked_session_wins_over_a_404(client, world):
    token = world.token("editor")
    _revoke(token)
    assert client.http.get("/api/interactions/999999", headers=auth(token)).status_code == 401


def test_a_revoked_session_changes_nothing(client, world):
    [row_id] = insert_rows(world.site_a, [{"title": "Kept"}])
    before = stored(row_id)
    token = world.token("editor")
    _revoke(token)

    for method, path, body in [
        ("PUT", f"/api/interactions/{row_id}", {"title": "Changed"}),
        ("DELETE", f"/api/interactions/{row_id}", None),
        ("POST", "/api/interactions", VALID),
    ]:
        response = getattr(client.http, method.lower())(
            path, body=json.dumps(body) if body else None, headers=json_headers(token)
        )
        assert response.status_code == 401, (method, response.json_body)
    assert stored(row_id) == before


def test_a_revoked_session_sends_no_mail_and_invites_nobody(client, world):
    """A view that acts outside the database (an invitation's message) runs only after the
    request's checks are settled: nothing of it happens for a refused caller."""
    token = world.token("admin")
    _revoke(token)
    mailbox.empty()
    response = client.http.post(
        f"/api/sites/{world.site_a}/invitations",
        body=json.dumps({"email": "nobody@example.com", "role": "viewer"}),
        headers=json_headers(token),
    )
    assert response.status_code == 401
    assert mailbox.messages() == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0


def test_the_view_runs_after_the_read_and_the_verdict(client, world, monkeypatch):
    """The endpoint's order: the route's read (one statement), the Redis verdict, then the view."""
    from chalicelib.cache import Pending
    from chalicelib.interactions import service

    token = world.token("editor")
    client.http.get("/api/interactions", headers=auth(token))  # warm
    events = []
    engine = db.get_engine()
    real_result, real_page = Pending.result, service.page

    def read(self):
        events.append("redis read")
        return real_result(self)

    def page(*args, **kwargs):
        events.append("view")
        return real_page(*args, **kwargs)

    monkeypatch.setattr(Pending, "result", read)
    monkeypatch.setattr(service, "page", page)
    sql = lambda *_args: events.append("sql")  # noqa: E731
    event.listen(engine, "before_cursor_execute", sql)
    try:
        assert client.http.get("/api/interactions", headers=auth(token)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", sql)
    assert events[:3] == ["sql", "redis read", "view"]


def test_the_redis_and_database_round_trips_overlap(client, world):
    """Both answers are awaited together: the statement is sent before the Redis answer is read."""
    token = world.token("editor")
    client.http.get("/api/interactions", headers=auth(token))  # warm
    events = []
    engine = db.get_engine()

    def sent(*_args):
        events.append("sql sent")

    from chalicelib.cache import Pending

    real_result = Pending.result

    def read(self):
        events.append("redis read")
        return real_result(self)

    event.listen(engine, "before_cursor_execute", sent)
    Pending.result = read  # type: ignore[method-assign]
    try:
        assert client.http.get("/api/interactions", headers=auth(token)).status_code == 200
    finally:
        Pending.result = real_result  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", sent)
    assert events[:2] == ["sql sent", "redis read"]
