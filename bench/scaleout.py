"""Scale-out: N simulated Lambda containers on one database, straight to PostgreSQL and through a
transaction pooler (PgBouncer, pool_mode = transaction, 20 server connections), for each N.

    make bench BENCH_ARGS="--scale-out"                # N = 10, 50, 200; 8 s measured each
    python -m bench --scale-out --containers 10,50,200 --seconds 8 --rate 10 --ramp 25

Each container is a process of its own (forked once the app is imported, so it starts in
milliseconds), with its own engine and Redis client, serving one request at a time as Lambda does:
the mixed CRUD load of scripts/load.py (keyed creates and their retries, own and contended
updates, deletes, searches, reads) through devtools/gateway.py. The containers start --ramp a second,
each with one request (its first invocation, which opens its connection and keeps it, as a warm
Lambda container does); then, for --seconds, every container sends requests with an exponential
pause of mean N / --rate between them: the same total load whatever N, so what changes with N is
the number of containers and their connections, not the work (the machine's two cores would
otherwise measure themselves). Ten users log in once before the containers start (argon2 is not
what is measured); every container of a user shares its token.

Per N and path, over the measured seconds: requests a second, p50/p95 latency; over the whole run:
errors (any 5xx; refused connections are 503s), the most server connections seen (pg_stat_activity's
client backends of the database, sampled every 100 ms; through the pooler also PgBouncer's SHOW
POOLS), and the check of scripts/load.py that no acknowledged write was lost. The pooler is started
for each pooled run and stopped after it (its server connections do not stay for the next direct
one); before it stops every server connection is inspected: no prepared statement, no setting a
session made (devtools/pooler.py). The run file goes to bench/results/scaleout-<time>.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
USERS = 10
POOL_SIZE = 20


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench --scale-out", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale-out", action="store_true")
    parser.add_argument("--containers", default="10,50,200", help="values of N, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per N and path")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="requests a second offered by all containers"
    )
    parser.add_argument("--ramp", type=float, default=25.0, help="containers started a second")
    parser.add_argument("--paths", default="direct,pooled", help="direct, pooled or both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", help="file name under bench/results/ (default: scaleout-<time>.json)")
    return parser.parse_args(argv)


# --- one container ------------------------------------------------------------------------------------


def _container(
    n: int,
    env: dict[str, str],
    token: str,
    site_id: int,
    shared: list[int],
    times: dict[str, float],
    seed: int,
    out: Any,
) -> None:
    """One container's loop (a forked process): scripts/load.py's operations, one at a time."""
    os.environ.update(env)
    from chalicelib import cache, config, db

    config.reset_settings()
    db.reset_engine()  # nothing inherited: its own engine and Redis client, opened on first use
    cache.reset_redis()
    from scripts import load

    rng = random.Random(seed * 100_000 + n)
    result = load.container_loop(n, token, site_id, shared, rng=rng, **times)
    out.put(result)


# --- the coordinator ------------------------------------------------------------------------------------


class ConnectionSampler:
    """The most client backends open to `database` (and, pooled, the pooler's server connections),
    sampled every 100 ms from a connection of its own."""

    def __init__(self, admin_url: str, database: str, pooler: Any = None) -> None:
        self.admin_url, self.database, self.pooler = admin_url, database, pooler
        self.most = 0
        self.most_pooler = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with engine.connect() as conn:
                while not self._stop.is_set():
                    count = conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                            "AND backend_type = 'client backend'"
                        ),
                        {"d": self.database},
                    )
                    self.most = max(self.most, int(count or 0))
                    if self.pooler is not None:
                        try:
                            self.most_pooler = max(
                                self.most_pooler, self.pooler.server_connections(self.database)
                            )
                        except Exception:  # the admin console is busy: next sample
                            pass
                    self._stop.wait(0.1)
        finally:
            engine.dispose()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)


def _login_all(env: dict[str, str]) -> list[str]:
    import logging

    logging.getLogger("interactions.access").disabled = True
    os.environ.update(env)
    from chalicelib import cache, config, db
    from devtools.gateway import Gateway
    from scripts.load import PASSWORD

    config.reset_settings()
    gateway = Gateway()
    tokens = []
    for n in range(USERS):
        answer = gateway.request(
            "POST", "/api/auth/login", None, {"username": f"load{n}", "password": PASSWORD}
        )
        if answer.status != 200:
            raise SystemExit(f"login of load{n} failed: {answer.status} {answer.raw[:200]}")
        tokens.append(answer.body["data"]["token"])
    db.reset_engine()  # no socket crosses the fork
    cache.reset_redis()
    return tokens


def run_one(
    n_containers: int,
    path: str,
    env: dict[str, str],
    direct_env: dict[str, str],
    admin_url: str,
    database: str,
    pooler: Any,
    args: argparse.Namespace,
) -> dict[str, Any]:
    from scripts import load

    # Seeded (and migrated) straight to the server; the containers use `env`.
    site_ids, site_of, shared = load.seed_scratch(direct_env, USERS)
    tokens = _login_all(env)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    ramp_s = n_containers / args.ramp
    start_at = time.perf_counter() + 0.5
    measure_from = start_at + ramp_s + 0.5
    until = measure_from + args.seconds
    spread = random.Random(args.seed)
    processes = []
    with ConnectionSampler(admin_url, database, pooler if path == "pooled" else None) as sampler:
        for n in range(n_containers):
            user = n % USERS
            process = context.Process(
                target=_container,
                args=(
                    n,
                    env,
                    tokens[user],
                    site_of[user],
                    shared[site_of[user]],
                    {
                        "first_at": start_at + spread.uniform(0, ramp_s),
                        "measure_from": measure_from,
                        "until": until,
                        "think_s": n_containers / args.rate,
                    },
                    args.seed,
                    out,
                ),
            )
            process.start()
            processes.append(process)
        wait = until - time.perf_counter() + 120
        results = sorted((out.get(timeout=wait) for _ in processes), key=lambda r: r["n"])
        for process in processes:
            process.join(30)
    os.environ.update(direct_env)  # the checks below read straight from the server
    from chalicelib import config, db

    config.reset_settings()
    db.reset_engine()
    elapsed = args.seconds
    latencies = [x for r in results for x in r["latencies"]]
    statuses = sum((Counter(r["statuses"]) for r in results), Counter())
    errors = sum(count for status, count in statuses.items() if int(status) >= 500)
    by_client = {n: site_of[n % USERS] for n in range(n_containers)}
    problems, rows = load.verify(results, by_client, shared)
    unexpected = [p for r in results for p in r["problems"] if "-> 5" not in p]
    server_errors = [p for r in results for p in r["problems"] if "-> 5" in p]
    lost = list(problems)
    pinned: dict[str, Any] | None = None
    if path == "pooled":
        states = pooler.server_states(database, POOL_SIZE)
        pinned = {
            "servers_inspected": len(states),
            "with_prepared_statements": sum(1 for prepared, _ in states.values() if prepared),
            "with_session_settings": sorted({name for _, names in states.values() for name in names}),
        }
    ms = [x * 1000 for x in latencies]
    return {
        "containers": n_containers,
        "path": path,
        "seconds": elapsed,
        "ramp_seconds": round(ramp_s, 1),
        "think_ms": round(n_containers / args.rate * 1000),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(report.percentile(ms, 0.50), 1) if ms else None,
        "p95_ms": round(report.percentile(ms, 0.95), 1) if ms else None,
        "errors_5xx": errors,
        "answers": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_connections_max": sampler.most,
        "pooler_server_connections_max": sampler.most_pooler if path == "pooled" else None,
        "acknowledged_writes_lost": len(lost),
        "verification_problems": lost[:10],
        "other_problems": unexpected[:10],
        "server_errors_sample": server_errors[:5],
        "rows_checked": rows,
        "pinned": pinned,
        "site_ids": site_ids,
    }


def _run_path(
    n: int, path: str, env: dict[str, str], admin: str, database: str, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """One run; a pooled one gets a pooler of its own, stopped after it (its idle server
    connections must not count in the next direct run)."""
    from devtools.pooler import Pooler

    if path != "pooled":
        return run_one(n, path, env, env, admin, database, None, args)
    pooler = Pooler.in_front_of(
        env["DATABASE_URL"], tmp / f"pgbouncer-{os.getpid()}", pool_size=POOL_SIZE, max_client_conn=n * 2 + 50
    ).start()
    try:
        return run_one(
            n, path, {**env, "DATABASE_URL": pooler.url(database)}, env, admin, database, pooler, args
        )
    finally:
        pooler.stop()
        pooler.remove_files()


def table(runs: list[dict[str, Any]], *, markdown: bool = False) -> str:
    head = ["N", "path", "req/s", "p50 ms", "p95 ms", "5xx", "server conns (max)", "lost writes", "pinned"]
    rows = [head]
    for r in runs:
        pinned = "-"
        if r["pinned"] is not None:
            p = r["pinned"]
            pinned = (
                "none" if not p["with_prepared_statements"] and not p["with_session_settings"] else str(p)
            )
        conns = str(r["server_connections_max"])
        if r["pooler_server_connections_max"] is not None:
            conns += f" (pooler: {r['pooler_server_connections_max']})"
        rows.append(
            [
                str(r["containers"]),
                r["path"],
                f"{r['requests_per_s']:.1f}",
                f"{r['p50_ms']}",
                f"{r['p95_ms']}",
                f"{r['errors_5xx']} / {r['answers']}",
                conns,
                str(r["acknowledged_writes_lost"]),
                pinned,
            ]
        )
    return report._render(rows, markdown)


def verdict(runs: list[dict[str, Any]]) -> list[str]:
    """The targets: through the pooler no error, no lost write, p95 within 3x the smallest N's,
    at most POOL_SIZE server connections, nothing pinned; directly, no lost write."""
    failures = []
    pooled = sorted((r for r in runs if r["path"] == "pooled"), key=lambda r: r["containers"])
    for r in runs:
        if r["acknowledged_writes_lost"]:
            failures.append(f"N={r['containers']} {r['path']}: {r['acknowledged_writes_lost']} lost writes")
    if pooled:
        base = pooled[0]["p95_ms"] or 0
        for r in pooled:
            if r["errors_5xx"]:
                failures.append(f"N={r['containers']} pooled: {r['errors_5xx']} errors")
            if r["server_connections_max"] > POOL_SIZE + 1:  # + the sampler's own connection
                failures.append(
                    f"N={r['containers']} pooled: {r['server_connections_max']} server connections"
                )
            if base and (r["p95_ms"] or 0) > 3 * base:
                failures.append(f"N={r['containers']} pooled: p95 {r['p95_ms']} ms > 3 x {base} ms")
            pinned = r["pinned"] or {}
            if pinned.get("with_prepared_statements") or pinned.get("with_session_settings"):
                failures.append(f"N={r['containers']} pooled: pinned {pinned}")
    return failures


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import create_engine, text

    from devtools import embedded
    from scripts import load

    counts = [int(x) for x in args.containers.split(",") if x.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    database = f"scaleout_{os.getpid()}"
    env, admin, redis_handle = load.scratch_environment(database)
    runs: list[dict[str, Any]] = []
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            max_connections = conn.scalar(text("SHOW max_connections"))
            version = conn.scalar(text("SHOW server_version"))
        engine.dispose()
        for n in counts:
            for path in paths:
                print(
                    f"scale-out: N={n} {path}, {n / args.ramp:.1f} s ramp + {args.seconds:.0f} s ...",
                    flush=True,
                )
                runs.append(_run_path(n, path, env, admin, database, args, embedded.DEVDATA / "tmp"))
                print(table([runs[-1]]), flush=True)
    finally:
        load.drop_scratch(admin, database, redis_handle)
    failures = verdict(runs)
    result = {
        "kind": "scale-out",
        "machine": report.machine(str(version), "embedded PostgreSQL (unix socket)"),
        "max_connections": int(max_connections),
        "pool_size": POOL_SIZE,
        "seconds_per_run": args.seconds,
        "offered_requests_per_s": args.rate,
        "containers_started_per_s": args.ramp,
        "runs": runs,
        "verdict": failures or "all targets met",
    }
    from datetime import UTC, datetime

    name = args.output or f"scaleout-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path = report.write(result, name)
    print()
    print(table(runs))
    print(f"\nmax_connections {max_connections}; run file {path.relative_to(ROOT)}")
    for failure in failures:
        print(f"target missed: {failure}")
    return 1 if failures else 0
