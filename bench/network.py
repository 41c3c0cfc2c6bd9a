"""The modeled network: relays (devtools/relay.py) in front of PostgreSQL and Redis that add a delay
each way and count round trips, run in a process of their own.

Deployed, every exchange with RDS Proxy or ElastiCache costs about a millisecond; on loopback it
costs nothing, so a request that talks to its servers ten times looks as fast as one that talks
once. Pointing both stacks (ours and the seed stack) at the same relays puts the same price on
every round trip for both. The relays live in a child process so that their threads never wait
for the GIL of a process being measured; the parent asks it for the counts over a pipe:

    with Network(pg=Upstream(unix="/sock/.s.PGSQL.5432"), redis=Upstream(host="127.0.0.1", port=6379),
                 pg_delay_ms=0.5, redis_delay_ms=0.25) as net:
        net.pg_port, net.redis_port
        before = net.counts(); ...; used = net.counts() - before

A round trip is counted when the server starts answering after the client sent something (see
devtools/relay.py): deterministic for a request-response protocol, whatever the timing. The delay
applies to the bytes exchanged, not to TCP's own handshake (which deployed costs one more round trip
per new connection, and TLS one or two more).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("pg", "redis")


@dataclass(frozen=True)
class Upstream:
    """Where a relay forwards to: a unix socket, or a TCP host and port."""

    unix: str | None = None
    host: str | None = None
    port: int | None = None

    def args(self) -> dict[str, Any]:
        return {"unix": self.unix} if self.unix else {"host": self.host, "port": self.port}


@dataclass(frozen=True)
class Counts:
    """Round trips and new connections per peer, as counted by the relays."""

    pg: int = 0
    redis: int = 0
    pg_connections: int = 0
    redis_connections: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.pg - other.pg,
            self.redis - other.redis,
            self.pg_connections - other.pg_connections,
            self.redis_connections - other.redis_connections,
        )

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.pg + other.pg,
            self.redis + other.redis,
            self.pg_connections + other.pg_connections,
            self.redis_connections + other.redis_connections,
        )


# --- where the servers are, and the URLs through the relays ------------------------------------------


def pg_upstream(database_url: str) -> Upstream:
    """The PostgreSQL server of a SQLAlchemy URL (pg8000 `unix_sock=` or libpq `host=/dir` too)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.query.get("unix_sock"):
        return Upstream(unix=str(url.query["unix_sock"]))
    host = url.query.get("host") or url.host or "127.0.0.1"
    port = int(url.query.get("port") or url.port or 5432)
    if str(host).startswith("/"):
        return Upstream(unix=f"{host}/.s.PGSQL.{port}")
    return Upstream(host=str(host), port=port)


def redis_upstream(redis_url: str) -> Upstream:
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return Upstream(unix=parts.path)
    return Upstream(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)


def redis_db(redis_url: str) -> int:
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return int(dict(parse_qsl(parts.query)).get("db", 0))
    return int(parts.path.strip("/") or 0)


def relayed_pg_url(database_url: str, port: int, *, drivername: str | None = None) -> str:
    """The same database, user and password, reached through the relay on 127.0.0.1:port."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    query = {k: v for k, v in url.query.items() if k not in ("unix_sock", "host", "port")}
    url = url.set(host="127.0.0.1", port=port, query=query)
    if drivername:
        url = url.set(drivername=drivername)
    return url.render_as_string(hide_password=False)


def relayed_redis_url(redis_url: str, port: int) -> str:
    return f"redis://127.0.0.1:{port}/{redis_db(redis_url)}"


def psycopg2_url(database_url: str, database: str) -> str:
    """A psycopg2 URL for another database on the server of `database_url` (a unix socket becomes
    libpq's `host=/socket/dir`; the embedded server has no TCP port)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    upstream = pg_upstream(database_url)
    query = {k: v for k, v in url.query.items() if k not in ("unix_sock", "host", "port")}
    if upstream.unix:
        directory, _, name = upstream.unix.rpartition("/")
        port = name.rsplit(".", 1)[-1]
        url = url.set(host=None, port=None, query={**query, "host": directory, "port": port})
    else:
        url = url.set(query=query)
    return url.set(drivername="postgresql+psycopg2", database=database).render_as_string(hide_password=False)


# --- the relay process ---------------------------------------------------------------------------------


class Network:
    """The relay process and its pipe."""

    def __init__(self, *, pg: Upstream, redis: Upstream, pg_delay_ms: float, redis_delay_ms: float) -> None:
        self.pg_delay_ms, self.redis_delay_ms = pg_delay_ms, redis_delay_ms
        spec = {
            "pg": {**pg.args(), "delay_ms": pg_delay_ms},
            "redis": {**redis.args(), "delay_ms": redis_delay_ms},
        }
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.network", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = self._read()
        self.pg_port, self.redis_port = ready["pg_port"], ready["redis_port"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the relay process ended (status {self._process.poll()})")
        return json.loads(line)

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read()

    def counts(self) -> Counts:
        """Everything counted since the relays started. An answer the client has received has
        been counted (the relay counts a chunk when it arrives, before forwarding it)."""
        return Counts(**self._ask("counts"))

    def describe(self) -> dict[str, Any]:
        return {
            "pg_delay_ms_each_way": self.pg_delay_ms,
            "redis_delay_ms_each_way": self.redis_delay_ms,
            "pg_round_trip_ms": 2 * self.pg_delay_ms,
            "redis_round_trip_ms": 2 * self.redis_delay_ms,
        }

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._ask("stop")
            except (OSError, RuntimeError, ValueError):
                pass
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def calibrate(net: Network, *, pg_url: str, redis_url: str, samples: int = 200) -> dict[str, Any]:
    """What one round trip through each relay really costs (the relay's own thread hand-offs and
    timer granularity come on top of the modeled delay), measured with the smallest exchanges:
    a simple query `;` on a pg8000 connection and a Redis PING. Also checks that each is counted
    as exactly one round trip."""
    import statistics

    import pg8000
    import redis as redis_lib
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    connection = pg8000.connect(
        user=url.username or "postgres",
        password=url.password,
        host="127.0.0.1",
        port=net.pg_port,
        database=url.database,
    )
    client = redis_lib.Redis(host="127.0.0.1", port=net.redis_port)
    result: dict[str, Any] = {}
    try:
        for peer, call in (("pg", lambda: connection.execute_simple(";")), ("redis", client.ping)):
            call()
            before = net.counts()
            times = []
            for _ in range(samples):
                started = time.perf_counter_ns()
                call()
                times.append(time.perf_counter_ns() - started)
            used = net.counts() - before
            result[peer] = {
                "median_ms": round(statistics.median(times) / 1e6, 3),
                "modeled_ms": 2 * (net.pg_delay_ms if peer == "pg" else net.redis_delay_ms),
                "round_trips_per_exchange": getattr(used, peer) / samples,
            }
    finally:
        connection.close()
        client.close()
    return result


def _serve(spec: dict[str, Any]) -> None:
    from devtools.relay import Relay

    relays = {}
    for peer in PEERS:
        s = spec[peer]
        upstream = (
            {"upstream_unix": s["unix"]} if s.get("unix") else {"upstream": (s["host"], int(s["port"]))}
        )
        relays[peer] = Relay(**upstream, delay_s=float(s["delay_ms"]) / 1000).start()
    print(json.dumps({"pg_port": relays["pg"].port, "redis_port": relays["redis"].port}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "counts":
            print(
                json.dumps(
                    {
                        "pg": relays["pg"].round_trips,
                        "redis": relays["redis"].round_trips,
                        "pg_connections": relays["pg"].connections,
                        "redis_connections": relays["redis"].connections,
                    }
                ),
                flush=True,
            )
        elif command == "stop":
            print("{}", flush=True)
            break
        else:
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    for relay in relays.values():
        relay.stop()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
