"""The API Lambda's life under SnapStart (chalicelib/lifecycle.py): init does the one-time work and
opens no connection; before the snapshot every connection is closed; after a restore — with the
servers the snapshot knew gone and fresh ones in their place — pools start afresh, `random` is
reseeded, the verified-token cache is dropped, and the first request works. The hooks are the
functions registered with Lambda's runtime (`snapshot_restore_py`), called here directly."""

from __future__ import annotations

import random
import sys
import types
from pathlib import Path

import pytest

from chalicelib import cache, db, lifecycle
from chalicelib.auth import tokens
from tests.factories import auth, login, make_site, make_user
from tests.faults.servers import RedisProcess, TcpProxy

pytestmark = pytest.mark.faults


def _open_database_connections() -> int:
    pool = db.get_engine().pool
    return pool.checkedin() + pool.checkedout()  # type: ignore[attr-defined]  # QueuePool's


def _open_redis_connections() -> int:
    pool = cache.get_redis().connection_pool  # redis-py's pool internals (pinned version)
    return sum(
        1
        for conn in [*pool._available_connections, *pool._in_use_connections]
        if getattr(conn, "_sock", None) is not None
    )


@pytest.fixture
def editor(client):
    site = make_site("Marketing")
    make_user("jdoe", sites={site: "editor"})
    return login(client)["token"]


def test_init_creates_the_clients_without_connecting(app_module, reconfigure):
    reconfigure(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", REDIS_URL="redis://127.0.0.1:9/0")
    lifecycle._initialised = False
    try:
        lifecycle.init(app_module.app)  # nothing listens there: init must not care
        assert _open_database_connections() == 0 and _open_redis_connections() == 0
    finally:
        lifecycle._initialised = True


def test_before_snapshot_closes_every_connection(client, editor):
    assert client.http.get("/api/interactions", headers=auth(editor)).status_code == 200
    assert _open_database_connections() >= 1 and _open_redis_connections() >= 1

    lifecycle.before_snapshot()

    assert _open_database_connections() == 0
    assert _open_redis_connections() == 0


def test_after_a_restore_with_fresh_servers_the_first_request_works(client, editor, tmp_path, reconfigure):
    """The snapshot's connections point at servers that are gone; new ones answer at the same
    addresses (a restore in another place, hours later)."""
    import os

    from sqlalchemy.engine import make_url

    from tests.faults.conftest import _database_target

    redis_server = RedisProcess(tmp_path / "redis").start()
    pg = TcpProxy(_database_target(os.environ["DATABASE_URL"])).open()
    url = make_url(db.get_engine().url).set(host="127.0.0.1", port=pg.port, query={})
    reconfigure(DATABASE_URL=url.render_as_string(hide_password=False), REDIS_URL=redis_server.url)
    try:
        assert client.http.get("/api/interactions", headers=auth(editor)).status_code == 200
        lifecycle.before_snapshot()
        # The world the snapshot knew disappears...
        pg.close()
        redis_server.stop()
        # ...and the restored copy finds new servers in their place.
        pg = TcpProxy(pg.target, port=pg.port).open()
        redis_server = RedisProcess(tmp_path / "redis2", port=redis_server.port).start()
        lifecycle.after_restore()

        response = client.http.get("/api/interactions", headers=auth(editor))
        assert response.status_code == 200, response.json_body
        assert client.http.get("/api/health").status_code == 200
    finally:
        pg.close()
        redis_server.stop()


def test_after_restore_reseeds_random_and_forgets_verified_tokens(editor):
    tokens.verify(editor)
    assert tokens._verified

    random.seed(1234)
    expected_without_reseed = random.Random(1234).random()
    lifecycle.after_restore()

    assert random.random() != expected_without_reseed
    assert not tokens._verified


def test_the_hooks_are_registered_with_lambdas_runtime(monkeypatch):
    registered = {"before": [], "after": []}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    runtime.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    monkeypatch.setattr(lifecycle, "_registered", {"before_snapshot": False, "after_restore": False})

    lifecycle.register_hooks()
    lifecycle.register_hooks()  # once only

    assert registered == {"before": [lifecycle.before_snapshot], "after": [lifecycle.after_restore]}


def test_a_snap_start_init_primes_and_leaves_no_connection_open(app_module, editor):
    done = lifecycle.prime(app_module.app)

    assert done["validators"] is True
    assert done["requests"] == len(lifecycle._PRIMING_PATHS)
    assert _open_database_connections() == 0 and _open_redis_connections() == 0


def test_priming_without_reachable_servers_still_gives_a_snapshot(app_module, reconfigure):
    reconfigure(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", REDIS_URL="redis://127.0.0.1:9/0")
    done = lifecycle.prime(app_module.app)
    assert done["validators"] is True and done["requests"] == 0


def test_an_on_demand_init_builds_no_schema_and_a_snap_start_init_builds_them_all(app_module):
    """A cold start without a snapshot builds each schema's validator when a request first uses
    it; a SnapStart init builds every one of them before the snapshot."""
    import subprocess

    from chalicelib.kit import schema

    code = (
        "import app; from chalicelib.kit import schema; "
        "print(len(schema.schemas()), sum(c.__pydantic_complete__ for c in schema.schemas()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    defined, built = map(int, result.stdout.split()[-2:])
    assert defined >= 15 and built == 0

    lifecycle.prime(app_module.app)
    assert all(cls.__pydantic_complete__ for cls in schema.schemas())


def test_every_schema_of_the_api_is_built_on_first_use(app_module):
    """A pydantic model of chalicelib that is not a kit.schema.Schema would be built at import."""
    import pydantic

    from chalicelib.kit.schema import Schema

    found, pending = [], list(pydantic.BaseModel.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("chalicelib.") and cls is not Schema:
            found.append(cls)
    assert found and all(issubclass(cls, Schema) for cls in found), [
        cls for cls in found if not issubclass(cls, Schema)
    ]
