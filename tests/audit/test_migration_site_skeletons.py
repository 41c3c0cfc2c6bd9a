"""Migration 0013 on a database of its own: every site gets its name's confusable skeleton, held by a
unique index; names that already share a skeleton stop the upgrade, naming them; down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.audit.test_migration import scratch  # noqa: F401  # the fixture

BEFORE, REVISION = "0012", "0013"


def test_every_site_gets_its_skeleton_and_the_index_holds(scratch):  # noqa: F811
    engine, config, _role = scratch
    command.upgrade(config, BEFORE)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name) VALUES ('Marketing'), ('caroI'), ('Ｓales')"))

    command.upgrade(config, REVISION)

    with engine.begin() as conn:
        assert conn.execute(text("SELECT name, name_skeleton FROM sites ORDER BY id")).all() == [
            ("Marketing", "marketing"),
            ("caroI", "carol"),
            ("Ｓales", "sales"),
        ]
    with pytest.raises(DBAPIError, match="uq_sites_name_skeleton"), engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name, name_skeleton) VALUES ('carol', 'carol')"))
    with pytest.raises(DBAPIError, match="name_skeleton"), engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name) VALUES ('Without')"))  # required

    command.downgrade(config, BEFORE)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name) VALUES ('carol')"))  # the old rule: case only
    with pytest.raises(RuntimeError, match="caroI, carol"):
        command.upgrade(config, REVISION)


def test_names_that_look_the_same_stop_the_upgrade_and_change_nothing(scratch):  # noqa: F811
    engine, config, _role = scratch
    command.upgrade(config, BEFORE)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name) VALUES ('Alpha'), ('\u0410lpha'), ('Beta')"))

    with pytest.raises(RuntimeError, match="Alpha, \u0410lpha"):
        command.upgrade(config, REVISION)

    with engine.begin() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == BEFORE
        assert conn.scalar(text("SELECT to_regclass('uq_sites_name_skeleton')")) is None
        columns = conn.scalars(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'sites'")
        ).all()
    assert "name_skeleton" not in columns
