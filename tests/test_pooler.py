"""Through a transaction pooler (`make test-pooled`: PgBouncer, pool_mode = transaction, in front of
the test database; skipped otherwise): nothing a request does stays on a server connection, a
pooler that dies is a quick 503 and the app recovers when it is back, and a server connection ended
in the middle of a request's transaction is a 503 with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chalicelib.models import Interaction
from tests import environment
from tests.faults.conftest import assert_unavailable, timed
from tests.faults.locks import side_connection
from tests.faults.test_partial_writes import FailAfter
from tests.interactions.helpers import VALID, create, make_world, send

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not environment.pooled(), reason="runs through the pooler (make test-pooled)"),
]
PATH = "/api/interactions"


@pytest.fixture
def world():
    return make_world()


def _requests(client, world) -> None:
    """A little of everything: reads (autocommit), writes (transactions), a search, a failure."""
    editor = world.token("editor")
    row = create(client, editor)
    assert send(client, "GET", f"{PATH}?search=meet", editor).status_code == 200
    assert send(client, "PUT", f"{PATH}/{row['id']}", editor, {"title": "Changed"}).status_code == 200
    assert send(client, "GET", f"{PATH}/{row['id']}", editor).status_code == 200
    assert send(client, "PUT", f"{PATH}/{row['id']}", editor, {"title": ""}).status_code == 400
    assert send(client, "DELETE", f"{PATH}/{row['id']}", editor).status_code == 200


def test_no_server_connection_keeps_anything_a_request_left(client, world):
    pooler = environment.pooler()
    _requests(client, world)
    servers = pooler.server_connections(environment.TEST_DATABASE)
    assert servers >= 1

    states = pooler.server_states(environment.TEST_DATABASE, pooler.pool_size)

    assert len(states) == pooler.pool_size  # every server connection the pool has, and more
    assert all(state == (0, []) for state in states.values()), states


def test_a_dead_pooler_is_a_quick_503_and_the_app_recovers_when_it_is_back(client, world):
    pooler = environment.pooler()
    editor = world.token("editor")
    assert send(client, "GET", PATH, editor).status_code == 200

    pooler.kill()
    try:
        response, elapsed = timed(lambda: send(client, "GET", PATH, editor))
        assert_unavailable(response, elapsed)
        response, elapsed = timed(lambda: send(client, "POST", PATH, editor, VALID))
        assert_unavailable(response, elapsed)
    finally:
        pooler.start()  # the same port

    assert send(client, "GET", PATH, editor).status_code == 200
    assert send(client, "POST", PATH, editor, VALID).status_code == 201


def test_the_server_connection_ended_inside_a_write_is_503_with_nothing_written(client, world):
    editor = world.token("editor")

    def end_the_backend(conn) -> None:
        # Inside the write's transaction: the pooler lent this server connection for all of it.
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with side_connection() as side:
            side.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")

    with FailAfter("INSERT INTO INTERACTIONS", end_the_backend, before=True) as hook:
        response, elapsed = timed(lambda: send(client, "POST", PATH, editor, VALID))
    assert hook.fired
    assert_unavailable(response, elapsed)
    with side_connection() as side:
        assert side.scalar(select(func.count()).select_from(Interaction)) == 0

    assert send(client, "POST", PATH, editor, VALID).status_code == 201
