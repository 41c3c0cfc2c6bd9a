"""seed-demo: realistic interactions streamed with COPY, the first site holding the largest share."""

from __future__ import annotations

from sqlalchemy import func, select, text

from chalicelib import cli
from chalicelib.db import session_scope
from chalicelib.interactions import seed, times
from chalicelib.models import Interaction, Site
from tests.factories import login
from tests.interactions.helpers import send

PASSWORD = "demo-password-for-tests"


def test_a_million_rows_over_ten_sites_give_the_first_one_a_fifth():
    shares = seed.site_shares(1_000_000, 10)
    assert shares[0] == 200_000 and sum(shares) == 1_000_000
    assert set(shares[1:]) == {88_889, 88_888}


def test_small_seeds_split_evenly_and_never_lose_a_row():
    assert seed.site_shares(300, 3) == [100, 100, 100]
    assert seed.site_shares(7, 1) == [7]
    assert seed.site_shares(0, 4) == [0, 0, 0, 0]
    for count, sites in ((1, 5), (11, 3), (999, 10)):
        assert sum(seed.site_shares(count, sites)) == count


def _per_site() -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(Site.name, func.count(Interaction.id)).join(Interaction).group_by(Site.name)
        ).all()
    return dict(rows)


def test_seed_demo_fills_the_sites_with_valid_searchable_rows(client, capsys):
    assert cli.main(["seed-demo", "--sites", "3", "--interactions", "600", "--password", PASSWORD]) == 0
    assert _per_site() == {"Marketing": 200, "Sales": 200, "Support": 200}
    assert "Seeded 600 interactions" in capsys.readouterr().out
    with session_scope() as session:
        rows = session.scalars(select(Interaction)).all()
        for row in rows:
            assert row.timezone in times.zone_names()
            assert row.end_datetime is None or row.end_datetime >= row.start_datetime
            assert 1 <= len(row.title) <= 255 and 1 <= len(row.lead) <= 100
            assert row.version >= 1 and (row.updated_at is None) == (row.version == 1)
    assert len({r.lead for r in rows}) > 50 and len({r.type for r in rows}) == 6
    token = login(client, "editor", PASSWORD)["token"]  # one site: already scoped to Marketing
    found = send(client, "GET", "/api/interactions?search=acme&per_page=100", token).json_body
    assert found["meta"]["pagination"]["total_records"] > 0
    assert all(
        "acme" in " ".join(str(v) for v in row.values()).lower() for row in found["data"]["interactions"]
    )


def test_a_big_seed_rebuilds_the_same_indexes(monkeypatch):
    with session_scope() as session:
        before = seed.secondary_indexes(session.connection())
    monkeypatch.setattr(seed, "REBUILD_THRESHOLD", 100)
    assert cli.main(["seed-demo", "--sites", "2", "--interactions", "300", "--password", PASSWORD]) == 0
    with session_scope() as session:
        assert seed.secondary_indexes(session.connection()) == before
        assert len(before) >= 15
        assert session.scalar(text("SELECT count(*) FROM interactions")) == 300


def test_seeding_twice_adds_rows_and_keeps_the_accounts(capsys):
    assert cli.main(["seed-demo", "--sites", "2", "--interactions", "10", "--password", PASSWORD]) == 0
    assert cli.main(["seed-demo", "--sites", "2", "--interactions", "10", "--password", PASSWORD]) == 0
    assert sum(_per_site().values()) == 20


def test_a_seed_lifts_the_apis_read_timeout_only_while_it_runs():
    from sqlalchemy import text as sql

    with session_scope() as session:
        driver = session.connection().connection.driver_connection
        before = driver._usock.gettimeout()
        assert before is not None  # the API's connections give up reading after a few seconds
        driver._usock.settimeout(0.5)
        with seed.no_read_timeout(driver):
            session.execute(sql("SET LOCAL statement_timeout = 0"))
            session.execute(sql("SELECT pg_sleep(0.8)"))  # longer than the socket allowed
        assert driver._usock.gettimeout() == 0.5
        driver._usock.settimeout(before)
