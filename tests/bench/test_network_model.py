"""The benchmark's modeled network (bench/network.py): relays in a process of their own in front of
the test servers count one round trip per exchange, add the configured delay each way, and the
URLs through them reach the same database and Redis."""

from __future__ import annotations

import os
import time

import pg8000
import pytest
import redis
from sqlalchemy.engine import make_url

from bench import network

PG_DELAY_MS, REDIS_DELAY_MS = 2.0, 1.0


@pytest.fixture
def net():
    with network.Network(
        pg=network.pg_upstream(os.environ["DATABASE_URL"]),
        redis=network.redis_upstream(os.environ["REDIS_URL"]),
        pg_delay_ms=PG_DELAY_MS,
        redis_delay_ms=REDIS_DELAY_MS,
    ) as running:
        yield running


def _pg(net):
    url = make_url(os.environ["DATABASE_URL"])
    return pg8000.connect(
        user=url.username or "postgres",
        password=url.password,
        host="127.0.0.1",
        port=net.pg_port,
        database=url.database,
    )


def _redis(net):
    return redis.Redis.from_url(network.relayed_redis_url(os.environ["REDIS_URL"], net.redis_port))


def test_each_exchange_is_one_round_trip_to_its_own_peer_and_pays_the_delay_both_ways(net):
    connection, client = _pg(net), _redis(net)
    try:
        connection.execute_simple(";")
        client.ping()
        before = net.counts()
        started = time.perf_counter()
        for _ in range(5):
            connection.execute_simple(";")
        pg_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(3):
            client.ping()
        redis_seconds = time.perf_counter() - started
        used = net.counts() - before
    finally:
        connection.close()
        client.close()

    assert (used.pg, used.redis) == (5, 3)
    assert (used.pg_connections, used.redis_connections) == (0, 0)
    assert pg_seconds >= 5 * 2 * PG_DELAY_MS / 1000
    assert redis_seconds >= 3 * 2 * REDIS_DELAY_MS / 1000


def test_new_connections_are_counted_apart(net):
    before = net.counts()
    connection = _pg(net)
    connection.close()
    client = _redis(net)
    client.ping()
    client.close()

    used = net.counts() - before

    assert (used.pg_connections, used.redis_connections) == (1, 1)


def test_calibration_finds_one_round_trip_per_exchange_and_at_least_the_modeled_time(net):
    figures = network.calibrate(
        net, pg_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"], samples=20
    )

    assert figures["pg"]["round_trips_per_exchange"] == 1
    assert figures["redis"]["round_trips_per_exchange"] == 1
    assert figures["pg"]["median_ms"] >= 2 * PG_DELAY_MS
    assert figures["redis"]["median_ms"] >= 2 * REDIS_DELAY_MS


def test_the_relay_process_ends_when_closed():
    running = network.Network(
        pg=network.pg_upstream(os.environ["DATABASE_URL"]),
        redis=network.redis_upstream(os.environ["REDIS_URL"]),
        pg_delay_ms=0,
        redis_delay_ms=0,
    )
    running.close()

    assert running._process.poll() == 0


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "postgresql+pg8000://postgres@/db?unix_sock=/run/pg/.s.PGSQL.5433",
            network.Upstream(unix="/run/pg/.s.PGSQL.5433"),
        ),
        (
            "postgresql+psycopg2://postgres@/db?host=/run/pg&port=5433",
            network.Upstream(unix="/run/pg/.s.PGSQL.5433"),
        ),
        ("postgresql+pg8000://u:p@db.internal:6432/db", network.Upstream(host="db.internal", port=6432)),
        ("postgresql+pg8000://u@127.0.0.1/db", network.Upstream(host="127.0.0.1", port=5432)),
    ],
)
def test_the_postgresql_server_is_read_from_either_drivers_url(url, expected):
    assert network.pg_upstream(url) == expected


def test_urls_through_the_relays_keep_the_database_credentials_and_redis_database():
    pg8000_url = "postgresql+pg8000://alice:s3cret@/bench?unix_sock=/run/pg/.s.PGSQL.5432"

    relayed = make_url(network.relayed_pg_url(pg8000_url, 40001))
    seed = make_url(network.psycopg2_url(pg8000_url, "bench_flask_ref"))
    seed_relayed = make_url(network.relayed_pg_url(network.psycopg2_url(pg8000_url, "other"), 40001))

    assert (relayed.host, relayed.port, relayed.database, relayed.username, relayed.password) == (
        "127.0.0.1",
        40001,
        "bench",
        "alice",
        "s3cret",
    )
    assert "unix_sock" not in relayed.query
    assert seed.drivername == "postgresql+psycopg2" and seed.database == "bench_flask_ref"
    assert dict(seed.query) == {"host": "/run/pg", "port": "5432"}
    assert (seed_relayed.host, seed_relayed.port, dict(seed_relayed.query)) == ("127.0.0.1", 40001, {})
    assert network.relayed_redis_url("redis://10.0.0.5:6379/15", 40002) == "redis://127.0.0.1:40002/15"
    assert network.relayed_redis_url("unix:///tmp/r.sock", 40002) == "redis://127.0.0.1:40002/0"
