"""Test set-up: a real PostgreSQL database built by the migrations and a real Redis.

With DATABASE_URL / REDIS_URL set, the tests use those servers (a separate `interactions_test`
database, Redis database 15); unset, they start the embedded ones from .devdata/. Every test
starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest.register_assert_rewrite("tests.leftovers")  # imported here, and a plugin (below)

from devtools.local_run import restore_default_sigint  # noqa: E402
from tests import environment, leftovers  # noqa: E402

# Started in the background (`make test &`, CI from a background job) the suite inherits SIGINT
# ignored, and so would everything it starts: a run command or a shell `trap` the tests stop with
# SIGINT would never see it. Everything the tests start begins with the default disposition.
restore_default_sigint()
# A temp directory of the session's own before anything starts: what is left in it, or still
# running with it, fails the run at the end (tests/leftovers.py).
leftovers.begin()
environment.configure()

from chalicelib import cache, config, db, mail  # noqa: E402
from tests import mailbox  # noqa: E402

pytest_plugins = ["tests.support", "tests.leftovers"]  # `reconfigure`, `access_log`; the end check


@pytest.fixture(scope="session", autouse=True)
def _schema():
    environment.migrate()
    yield
    db.reset_engine()
    cache.reset_redis()
    environment.drop_database()


@pytest.fixture(autouse=True)
def clean_state():
    """Empty tables and Redis before each test; fresh settings and clients."""
    config.reset_settings()
    environment.truncate_all()
    cache.get_redis().flushdb()
    mailbox.empty()
    mail.reset()
    yield
    config.reset_settings()
    cache.reset_redis()
    mail.reset()


@pytest.fixture
def app_module():
    import app as app_module

    return app_module


@pytest.fixture
def client(app_module):
    from chalice.test import Client

    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


@pytest.fixture
def session():
    with db.session_scope() as s:
        yield s


@pytest.fixture
def redis_client():
    return cache.get_redis()
