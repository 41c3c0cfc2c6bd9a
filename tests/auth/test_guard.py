"""The per-request checks (chalicelib/auth/guard.py): the Redis script travels while the request's
first database statement waits on PostgreSQL, and its verdict is settled right after that
statement — before anything acts on the statement's answer, and before any error is answered. So a
revoked session or a rate limit still wins over every other answer, and nothing is written for a
request they refuse."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from chalicelib import db
from chalicelib.auth import sessions, tokens
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


def test_the_verdict_is_settled_before_a_write_when_the_first_statement_writes(world):
    """A safety net: should a request's first statement ever be a write, the verdict is settled
    before it runs (and a read's, right after it)."""
    from sqlalchemy import insert, select

    from chalicelib.models import Site

    order = []
    engine = db.get_engine()

    def sql(*_args):
        order.append("sql")

    event.listen(engine, "before_cursor_execute", sql)
    try:
        with db.around_first_statement(lambda: order.append("verdict")):
            with db.session_scope() as session:
                session.execute(insert(Site).values(name="Hooked"))
        first_write = list(order)
        order.clear()
        with db.around_first_statement(lambda: order.append("verdict")):
            with db.session_scope(transaction=False) as session:
                session.execute(select(Site.id))
    finally:
        event.remove(engine, "before_cursor_execute", sql)
    assert first_write[:2] == ["verdict", "sql"]
    assert order == ["sql", "verdict"]


def test_a_select_over_a_data_modifying_with_counts_as_a_write(world):
    from sqlalchemy import insert, select

    from chalicelib.models import Site

    order = []
    engine = db.get_engine()

    def sql(*_args):
        order.append("sql")

    event.listen(engine, "before_cursor_execute", sql)
    try:
        added = insert(Site).values(name="Hooked").returning(Site.id).cte("added")
        with db.around_first_statement(lambda: order.append("verdict")):
            with db.session_scope() as session:
                session.execute(select(added.c.id))
    finally:
        event.remove(engine, "before_cursor_execute", sql)
    assert order[:2] == ["verdict", "sql"]


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
