"""`make bench` / `python -m bench`: seed (or reuse) the data set, then time every scenario through
the real handlers, on loopback (interleaved with its SQL replayed on a raw pg8000 connection, the
floor) and on a modeled network (relays adding a delay to every exchange with PostgreSQL and Redis,
counting round trips, API Gateway's authorizer cache modeled), each beside the seed stack
(shared/anchors/flask_ref) in the same run; check the query plans, measure cold starts (beside the
seed stack's) and memory, print the tables and write bench/results/*.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from typing import Any

from sqlalchemy import create_engine, text

from bench import coldstart, environment, flask_ref, network, report, scenarios, seed
from bench.events import AuthorizerCache, Call, Prepared
from bench.floor import Capture, Floor

WARMUP = 3
NETWORKS = ("loopback", "modeled")


def _default_authorizer_ttl() -> int:
    """The deployed stages' authorizer result cache (deploy/stages.py)."""
    try:
        from deploy import stages

        return stages.authorizer_cache_seconds("prod")
    except Exception:  # the benchmark still runs without the deploy package's dependencies
        return 300


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="interactions in the data set")
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100, help="timed requests per scenario")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh processes per cold-start path")
    parser.add_argument(
        "--only", help="run only the scenarios whose name contains this text (alternatives separated by |)"
    )
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--output", help="file name under bench/results/ (default: bench-<time>.json)")
    parser.add_argument(
        "--network",
        choices=("both", *NETWORKS),
        default="both",
        help="loopback only, the modeled network only, or both (default)",
    )
    parser.add_argument(
        "--pg-delay-ms",
        type=float,
        default=0.5,
        help="modeled network: delay each way to PostgreSQL (default 0.5)",
    )
    parser.add_argument(
        "--redis-delay-ms",
        type=float,
        default=0.25,
        help="modeled network: delay each way to Redis (default 0.25)",
    )
    parser.add_argument(
        "--authorizer-ttl",
        type=float,
        default=None,
        help="modeled API Gateway authorizer cache, seconds (default: the stages' value)",
    )
    parser.add_argument(
        "--session-requests",
        type=int,
        default=100,
        help="requests per token session for the authorizer cache model (default 100)",
    )
    parser.add_argument(
        "--flask-ref", help="the seed stack's directory (default: ../shared/anchors/flask_ref)"
    )
    parser.add_argument("--skip-flask-ref", action="store_true", help="do not run the seed stack beside ours")
    parser.add_argument(
        "--block",
        type=int,
        default=10,
        help="requests per alternating block of ours and the seed stack's (default 10)",
    )
    args = parser.parse_args(argv)
    if args.authorizer_ttl is None:
        args.authorizer_ttl = _default_authorizer_ttl()
    for name in ("pg_delay_ms", "redis_delay_ms", "authorizer_ttl"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if args.iterations < 1 or args.block < 1 or args.session_requests < 1 or args.cold_runs < 1:
        parser.error("--iterations, --block, --session-requests and --cold-runs must be at least 1")
    return args


def _quiet_access_log() -> None:
    """The middleware's one JSON line per request still gets formatted and written, to /dev/null
    rather than the terminal, so that the table stays readable."""
    import logging

    for name in ("interactions.access", "interactions.error"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def _split(total: int, parts: int) -> list[int]:
    """`total` requests spread as evenly as possible over `parts` blocks."""
    return [round((b + 1) * total / parts) - round(b * total / parts) for b in range(parts)]


class SeedPair:
    """The seed stack's request for the same thing as one of our scenarios, on a worker."""

    def __init__(self, worker: flask_ref.Worker, path: str, requests: int) -> None:
        self.worker, self.path, self.requests = worker, path, requests


class Runner:
    def __init__(self, app: Any, authorizer: Any, engine: Any, floor: Floor) -> None:
        self.app, self.authorizer, self.engine, self.floor = app, authorizer, engine, floor

    def call(self, prepared: Prepared, cache: AuthorizerCache | None = None) -> tuple[dict[str, Any], int]:
        response, authorizer_ns = prepared.invoke(self.app, self.authorizer, cache)
        expected = prepared.call.expect
        if response["statusCode"] != expected:
            raise RuntimeError(
                f"{prepared.call.method} {prepared.call.path}: expected {expected}, "
                f"got {response['statusCode']}: {response['body'][:500]}"
            )
        return response, authorizer_ns

    def measure(
        self, scenario: scenarios.Scenario, iterations: int, *, seed: SeedPair | None = None, block: int = 10
    ) -> dict[str, Any]:
        call = scenario.call() if callable(scenario.call) else scenario.call
        prepared = Prepared(call)
        reset = scenario.reset or (lambda: None)
        # The first request of a scenario is timed and captured on its own: it pays what later ones
        # may find remembered (a filtered total), and its SQL is what the EXPLAIN step checks.
        reset()
        with Capture(self.engine) as first:
            started = time.perf_counter_ns()
            self.call(prepared)
            first_ms = round((time.perf_counter_ns() - started) / 1e6, 3)
        for _ in range(WARMUP - 1):
            reset()
            self.call(prepared)
        reset()
        with Capture(self.engine) as capture:
            self.call(prepared)
        statements = capture.statements
        for _ in range(2):
            reset()
            self.floor.run(statements, scenario.substitute)
        seed_ns: list[int] = []
        seed_blocks = _split(seed.requests, -(-iterations // block)) if seed else []
        if seed:
            seed.worker.run(seed.path, WARMUP)
        handler_ns, authorizer_ns, floor_ns = [], [], []
        gc.collect()
        for i in range(iterations):
            # Alternate which goes first, so that neither always runs on a cache the other warmed.
            for which in (0, 1) if i % 2 == 0 else (1, 0):
                reset()
                if which == 0:
                    started = time.perf_counter_ns()
                    _, auth_ns = self.call(prepared)
                    handler_ns.append(time.perf_counter_ns() - started)
                    authorizer_ns.append(auth_ns)
                else:
                    started = time.perf_counter_ns()
                    self.floor.run(statements, scenario.substitute)
                    floor_ns.append(time.perf_counter_ns() - started)
            if seed and ((i + 1) % block == 0 or i == iterations - 1) and seed_blocks[i // block]:
                seed_ns.extend(seed.worker.run(seed.path, seed_blocks[i // block]))
        handler, floor = report.stats(handler_ns), report.stats(floor_ns)
        result = {
            "name": scenario.name,
            "group": scenario.group,
            "method": call.method,
            "path": call.path,
            "status": call.expect,
            "handler": handler,
            "authorizer": report.stats(authorizer_ns),
            "floor": floor,
            "ratio": round(handler["median_ms"] / floor["median_ms"], 2),
            "overhead_ms": round(handler["median_ms"] - floor["median_ms"], 3),
            "first_request_ms": first_ms,
            "statements": len(statements),
            "sql": [s.sql for s in statements],
            "first_request_sql": [s.sql for s in first.statements],
            "_captured": first.statements,
            "_prepared": prepared,
        }
        if seed:
            result["flask_ref"] = {"path": seed.path, **report.stats(seed_ns)}
            result["over_flask_ref"] = round(handler["median_ms"] / result["flask_ref"]["median_ms"], 3)
        return result

    def measure_network(
        self,
        scenario: scenarios.Scenario,
        iterations: int,
        *,
        net: network.Network,
        cache: AuthorizerCache,
        session_requests: int,
        seed: SeedPair | None = None,
        block: int = 10,
    ) -> dict[str, Any]:
        """The scenario through the relays, with API Gateway's authorizer cache: our requests and the
        seed stack's in alternating blocks, the round trips of each block counted by the relays."""
        call = scenario.call() if callable(scenario.call) else scenario.call
        prepared = Prepared(call)
        reset = scenario.reset or (lambda: None)
        cache.clear()
        reset()
        started = time.perf_counter_ns()
        self.call(prepared, cache)
        first_ms = round((time.perf_counter_ns() - started) / 1e6, 3)
        for _ in range(WARMUP - 1):
            reset()
            self.call(prepared, cache)
        if seed:
            seed.worker.run(seed.path, WARMUP)
        cache.clear()  # a session starts: its first request finds no cached answer
        handler_ns: list[int] = []
        seed_ns: list[int] = []
        ours_used, seed_used = network.Counts(), network.Counts()
        blocks = -(-iterations // block)
        seed_blocks = _split(seed.requests, blocks) if seed else [0] * blocks
        gc.collect()
        for b in range(blocks):
            count = min(block, iterations - b * block)

            def ours(b: int = b, count: int = count) -> None:
                nonlocal ours_used
                before = net.counts()
                for k in range(count):
                    if (b * block + k) % session_requests == 0:
                        cache.expire()  # a new session: the token's answer is not cached yet
                    reset()  # untimed and uncounted: the benchmark's own connection, not the relays
                    t0 = time.perf_counter_ns()
                    self.call(prepared, cache)
                    handler_ns.append(time.perf_counter_ns() - t0)
                ours_used += net.counts() - before

            def theirs(b: int = b) -> None:
                nonlocal seed_used
                if seed and seed_blocks[b]:
                    before = net.counts()
                    seed_ns.extend(seed.worker.run(seed.path, seed_blocks[b]))
                    seed_used += net.counts() - before

            for step in (ours, theirs) if b % 2 == 0 else (theirs, ours):
                step()
        handler = report.stats(handler_ns)
        result: dict[str, Any] = {
            "name": scenario.name,
            "group": scenario.group,
            "method": call.method,
            "path": call.path,
            "status": call.expect,
            "handler": handler,
            "first_request_ms": first_ms,
            "round_trips": {
                "pg": round(ours_used.pg / iterations, 2),
                "redis": round(ours_used.redis / iterations, 2),
                "new_pg_connections": ours_used.pg_connections,
                "new_redis_connections": ours_used.redis_connections,
            },
            "authorizer_invocations_per_request": round(cache.invocations / iterations, 3)
            if prepared.token_event is not None
            else 0.0,
            "authorizer_invocations": cache.invocations,
            "requests": iterations,
            "protected": prepared.token_event is not None,
            "_prepared": prepared,
        }
        if seed:
            result["flask_ref"] = {
                "path": seed.path,
                **report.stats(seed_ns),
                "round_trips": {
                    "pg": round(seed_used.pg / len(seed_ns), 2),
                    "redis": round(seed_used.redis / len(seed_ns), 2),
                    "new_pg_connections": seed_used.pg_connections,
                    "new_redis_connections": seed_used.redis_connections,
                },
            }
            result["over_flask_ref"] = round(handler["median_ms"] / result["flask_ref"]["median_ms"], 3)
        return result


def _login(runner: Runner, site_id: int) -> tuple[str, int]:
    body = {"username": seed.DEMO_USER, "password": seed.BENCH_PASSWORD}
    response, _ = runner.call(Prepared(Call("POST", "/api/auth/login", "/api/auth/login", body=body)))
    data = json.loads(response["body"])["data"]
    token = data["token"]
    if (data.get("current_site") or {}).get("id") != site_id:
        response, _ = runner.call(
            Prepared(Call("POST", "/api/auth/site", "/api/auth/site", body={"site_id": site_id}, token=token))
        )
        token = json.loads(response["body"])["data"]["token"]
    return token, data["user"]["id"]


def _point_app_at(*, database_url: str, redis_url: str) -> None:
    """Make the app's next request use these servers (a new engine and Redis client; the settings
    are read again)."""
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    from chalicelib import cache, config, db

    db.reset_engine()
    cache.reset_redis()
    config.reset_settings()


class SeedStack:
    """The seed stack as this run uses it: interpreter, directory, database URL, secret, token."""

    def __init__(self, python: Any, anchor: Any, database_url: str, seeded: dict[str, Any]) -> None:
        import secrets

        self.python, self.anchor, self.database_url, self.seeded = python, anchor, database_url, seeded
        self.secret = secrets.token_urlsafe(48)
        self.token: str | None = None
        self.info: dict[str, Any] | None = None
        self.cold_code = flask_ref.coldstart_child(anchor)

    def env(self, *, database_url: str, redis_url: str) -> dict[str, str]:
        extra = {"TOKEN": self.token} if self.token else {}
        return flask_ref.environment(
            database_url=database_url, redis_url=redis_url, jwt_secret=self.secret, **extra
        )

    def worker(self, *, database_url: str, redis_url: str) -> flask_ref.Worker:
        worker = flask_ref.Worker.start(
            self.python, self.anchor, self.env(database_url=database_url, redis_url=redis_url)
        )
        if self.info is None:
            self.info = {k: v for k, v in worker.call("info").items() if k != "ok"}
            self.token = worker.call("token")["token"]
        return worker

    def pair(
        self, worker: flask_ref.Worker | None, scenario: scenarios.Scenario, iterations: int
    ) -> SeedPair | None:
        found = flask_ref.pair_for(scenario.name) if worker else None
        if found is None or worker is None or self.info is None:
            return None
        path, cap = found
        return SeedPair(worker, path.format(mid_id=self.info["mid_id"]), min(cap or iterations, iterations))


def _prepare_seed_stack(
    args: argparse.Namespace, settings: dict[str, str], seed_info: dict[str, Any]
) -> tuple[SeedStack | None, str | None]:
    if args.skip_flask_ref:
        return None, "skipped (--skip-flask-ref)"
    anchor = flask_ref.locate(args.flask_ref)
    if anchor is None:
        where = args.flask_ref or flask_ref.DEFAULT_ANCHOR
        note = f"the seed stack is not at {where} (app.py, seed.py, bench.py): measuring ours alone"
        print(f"bench: {note}", flush=True)
        return None, note
    python = flask_ref.ensure_venv()
    url = network.psycopg2_url(settings["DATABASE_URL"], flask_ref.DATABASE)
    big_share = round(seed_info["by_site"][0]["rows"] / seed_info["rows"], 3)
    seeded = flask_ref.ensure_seeded(
        python,
        anchor,
        admin_url=settings["BENCH_ADMIN_DATABASE_URL"],
        seed_url=url,
        redis_url=settings["REDIS_URL"],
        rows=args.rows,
        big_share=big_share,
    )
    return SeedStack(python, anchor, url, seeded), None


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if "--scale-out" in arguments:  # its own run (bench/scaleout.py), nothing else
        from bench import scaleout

        return scaleout.main(arguments)
    args = _parse_args(argv)
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    networks = NETWORKS if args.network == "both" else (args.network,)
    settings = environment.configure()
    from chalicelib.config import normalise_database_url

    own_engine = create_engine(normalise_database_url(settings["DATABASE_URL"]), pool_size=2)
    seed_info = seed.ensure(own_engine, rows=args.rows, sites=args.sites, big_site_rows=args.rows // 10)
    site_id, site_rows = seed_info["by_site"][0]["site_id"], seed_info["by_site"][0]["rows"]
    stack, stack_note = _prepare_seed_stack(args, settings, seed_info)

    import app as app_module
    from chalicelib import db
    from chalicelib.auth.authorizer import jwt_authorizer

    _quiet_access_log()
    engine = db.get_engine()
    floor = Floor(engine)
    runner = Runner(app_module.app, jwt_authorizer, engine, floor)
    with own_engine.connect() as conn:
        postgres_version = conn.execute(text("SHOW server_version")).scalar_one()

    token, user_id = _login(runner, site_id)
    scenarios.remove_bench_rows(own_engine)  # left over by an interrupted run
    fixture = scenarios.prepare_fixture(own_engine, site_id=site_id, site_rows=site_rows)
    planned = scenarios.build(
        fixture,
        routes=app_module.app.routes,
        token=token,
        engine=own_engine,
        user_id=user_id,
        login_body={"username": seed.DEMO_USER, "password": seed.BENCH_PASSWORD},
    )
    if args.only:
        planned = [s for s in planned if any(part in s.name for part in args.only.split("|"))]

    beside = "beside the seed stack" if stack else "alone"
    phases: dict[str, dict[str, Any]] = {}

    def phase(name: str) -> None:
        """The load average and clock at the start of each phase (the machine is shared)."""
        phases[name] = {
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "started": time.strftime("%H:%M:%S", time.gmtime()),
        }

    measured: list[dict[str, Any]] = []
    if "loopback" in networks:
        phase("loopback")
        print(
            f"\nbench: loopback, {beside}: {len(planned)} scenarios x {args.iterations} requests (handler and "
            f"floor interleaved), site {site_id} with {site_rows:,} of {seed_info['rows']:,} interactions\n",
            flush=True,
        )
        worker = (
            stack.worker(database_url=stack.database_url, redis_url=settings["REDIS_URL"]) if stack else None
        )
        try:
            for scenario in planned:
                iterations = scenario.iterations or args.iterations
                result = runner.measure(
                    scenario,
                    iterations,
                    seed=stack.pair(worker, scenario, iterations) if stack else None,
                    block=args.block,
                )
                measured.append(result)
                print(report.table([result]).splitlines()[-1] + report.beside(result), flush=True)
        finally:
            if worker:
                worker.close()
        scenarios.remove_bench_rows(own_engine)

    modeled: list[dict[str, Any]] = []
    net: network.Network | None = None
    relayed: dict[str, str] = {}
    network_info: dict[str, Any] = {"modes": list(networks)}
    if "modeled" in networks or not args.skip_cold_start:
        net = network.Network(
            pg=network.pg_upstream(settings["DATABASE_URL"]),
            redis=network.redis_upstream(settings["REDIS_URL"]),
            pg_delay_ms=args.pg_delay_ms,
            redis_delay_ms=args.redis_delay_ms,
        )
        relayed = {
            "database_url": network.relayed_pg_url(settings["DATABASE_URL"], net.pg_port),
            "redis_url": network.relayed_redis_url(settings["REDIS_URL"], net.redis_port),
        }
        network_info.update(
            model=net.describe(),
            authorizer_cache_ttl_s=args.authorizer_ttl,
            session_requests=args.session_requests,
            calibration=network.calibrate(
                net, pg_url=settings["DATABASE_URL"], redis_url=settings["REDIS_URL"]
            ),
        )
    try:
        if "modeled" in networks:
            assert net is not None
            cal = network_info["calibration"]
            print(
                f"\nbench: modeled network, {beside}: +{args.pg_delay_ms} ms each way to PostgreSQL "
                f"(a round trip measures {cal['pg']['median_ms']} ms), +{args.redis_delay_ms} ms each way to "
                f"Redis ({cal['redis']['median_ms']} ms); authorizer cache {args.authorizer_ttl:g} s, "
                f"{args.session_requests}-request sessions\n",
                flush=True,
            )
            phase("modeled")
            _point_app_at(**relayed)
            worker = (
                stack.worker(
                    database_url=network.relayed_pg_url(stack.database_url, net.pg_port),
                    redis_url=relayed["redis_url"],
                )
                if stack
                else None
            )
            cache = AuthorizerCache(args.authorizer_ttl)
            try:
                for scenario in planned:
                    iterations = scenario.iterations or args.iterations
                    result = runner.measure_network(
                        scenario,
                        iterations,
                        net=net,
                        cache=cache,
                        session_requests=args.session_requests,
                        seed=stack.pair(worker, scenario, iterations) if stack else None,
                        block=args.block,
                    )
                    modeled.append(result)
                    print(report.network_table([result]).splitlines()[-1], flush=True)
            finally:
                if worker:
                    worker.close()
                _point_app_at(database_url=settings["DATABASE_URL"], redis_url=settings["REDIS_URL"])
            scenarios.remove_bench_rows(own_engine)

        from bench import explain

        plans = []
        for scenario, result in zip(planned, measured, strict=False):
            if scenario.checks_plan:
                plans.append(
                    explain.check(
                        floor,
                        scenario.name,
                        result["_captured"],
                        wants_trigram=scenario.name.startswith("search")
                        if scenario.wants_trigram is None
                        else scenario.wants_trigram,
                        table=scenario.plan_table,
                    )
                )

        cold: dict[str, Any] = {}
        if not args.skip_cold_start:
            phase("cold start")
            cold = _cold(
                args, networks, measured or modeled, stack, settings, relayed, net.pg_port if net else None
            )
        scenarios.remove_bench_rows(own_engine)
    finally:
        if net is not None:
            net.close()

    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in measured]
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make bench  (python -m bench "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + ")",
        "machine": {
            **report.machine(postgres_version, settings["BENCH_SERVER"]),
            "load_average_at_start": load_at_start,
            "phases": phases,
        },
        "data": {
            **seed_info,
            "benchmark_site_id": site_id,
            "benchmark_site_rows": site_rows,
            "fixture": vars(fixture),
            "bench_rows_removed": scenarios.remove_bench_rows(own_engine),
            "flask_ref": stack.seeded if stack else None,
        },
        "iterations": args.iterations,
        "flask_ref": (
            {
                "anchor": str(stack.anchor),
                "environment": str(flask_ref.VENV.relative_to(flask_ref.ROOT)),
                "info": stack.info,
                "block": args.block,
            }
            if stack
            else {"note": stack_note}
        ),
        "network": network_info,
        "scenarios": public,
        "modeled": [{k: v for k, v in r.items() if not k.startswith("_")} for r in modeled],
        "explain": plans,
        "cold_start": cold,
        "memory": {"benchmark_process_peak_rss_mb": peak_rss_mb},
        "readme_baseline": report.readme_baseline(),
    }
    result["targets"] = _targets(result)
    path = report.write(result, args.output)
    _print_summary(result, path)
    own_engine.dispose()
    floor.close()
    return 0 if all(p["ok"] for p in plans) else 1


def _cold(
    args: argparse.Namespace,
    networks: tuple[str, ...],
    measured: list[dict[str, Any]],
    stack: SeedStack | None,
    settings: dict[str, str],
    relayed: dict[str, str],
    pg_port: int | None,
) -> dict[str, Any]:
    with coldstart.bytecode_cache() as compiled:
        return _cold_with(args, networks, measured, stack, settings, relayed, pg_port, compiled)


def _cold_with(
    args: argparse.Namespace,
    networks: tuple[str, ...],
    measured: list[dict[str, Any]],
    stack: SeedStack | None,
    settings: dict[str, str],
    relayed: dict[str, str],
    pg_port: int | None,
    compiled: dict[str, str],
) -> dict[str, Any]:
    cold: dict[str, Any] = {}
    by_name = {r["name"]: r for r in measured}
    listing = by_name.get("list (default)")
    if listing:
        prepared = listing["_prepared"]
        for name in networks:
            services = (
                {}
                if name == "loopback"
                else {"DATABASE_URL": relayed["database_url"], "REDIS_URL": relayed["redis_url"]}
            )
            seed_child = None
            if stack and stack.token:
                seed_db = (
                    stack.database_url
                    if name == "loopback" or pg_port is None
                    else network.relayed_pg_url(stack.database_url, pg_port)
                )
                seed_env = stack.env(
                    database_url=seed_db, redis_url=services.get("REDIS_URL", settings["REDIS_URL"])
                )

                def seed_child(extra: dict[str, str], seed_env: dict[str, str] = seed_env) -> dict[str, Any]:
                    return flask_ref.run_coldstart_child(
                        stack.python, stack.anchor, stack.cold_code, {**seed_env, **extra}
                    )

            print(f"bench: cold starts ({name}), {args.cold_runs} fresh processes per path", flush=True)
            cold[name] = coldstart.measure(
                list_event=prepared.event,
                token_event=prepared.token_event,
                runs=args.cold_runs,
                services=services,
                flask_ref=seed_child,
                compiled=compiled,
            )
        mix = [
            r["_prepared"].event for r in measured if r["group"] in ("auth", "finder") and r["status"] == 200
        ]
        cold["handler_process"] = coldstart.handler_peak_rss(mix)
        seed_imports = None
        if stack and stack.token:
            seed_imports = (
                stack.python,
                stack.anchor,
                stack.cold_code,
                stack.env(database_url=stack.database_url, redis_url=settings["REDIS_URL"]),
            )
        cold["imports"] = coldstart.cold_path_imports(
            list_event=prepared.event, flask_ref=seed_imports, compiled=compiled
        )
        cold["instructions"] = coldstart.instructions(
            list_event=prepared.event,
            token_event=prepared.token_event,
            flask_ref=seed_imports,
            compiled=compiled,
        )
    cold["importtime_app"] = coldstart.importtime("app", compiled=compiled)
    cold["importtime_authorizer"] = coldstart.importtime("chalicelib.auth.authorizer", compiled=compiled)
    return cold


READ_BUDGET, WRITE_BUDGET = (2, 1), (4, 1)  # (PostgreSQL, Redis) round trips: tests/test_round_trips.py


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    scen = [s for s in result["scenarios"] if s["name"] != "login"]
    finder = [s for s in result["scenarios"] if s["group"] == "finder"]
    cold = result["cold_start"]
    worst_overhead = max(scen, key=lambda s: s["overhead_ms"], default=None)
    worst_p95 = max(
        (s for s in finder if not s["name"].startswith("search worst")),
        key=lambda s: s["handler"]["p95_ms"],
        default=None,
    )
    audit_page = next((s for s in result["scenarios"] if s["name"] == "site audit (first page)"), None)
    targets: dict[str, Any] = {}
    if result["scenarios"]:
        targets.update(
            {
                "overhead_le_1ms_except_login": {
                    "met": all(s["overhead_ms"] <= 1.0 for s in scen),
                    "worst": worst_overhead
                    and {"scenario": worst_overhead["name"], "overhead_ms": worst_overhead["overhead_ms"]},
                    "over": [s["name"] for s in scen if s["overhead_ms"] > 1.0],
                },
                # The worst terms the search rule accepts are measured for their plans; their cost is
                # bounded per user by SEARCH_RATE_PER_MINUTE, not by this target.
                "finder_p95_le_50ms": {
                    "met": all(
                        s["handler"]["p95_ms"] <= 50
                        for s in finder
                        if not s["name"].startswith("search worst")
                    ),
                    "worst": worst_p95
                    and {"scenario": worst_p95["name"], "p95_ms": worst_p95["handler"]["p95_ms"]},
                    "excluded": [s["name"] for s in finder if s["name"].startswith("search worst")],
                },
                "audit_first_page_p95_le_20ms": {
                    "met": audit_page is not None and audit_page["handler"]["p95_ms"] <= 20,
                    "p95_ms": audit_page and audit_page["handler"]["p95_ms"],
                    "events": result["data"].get("events"),
                },
                "no_seq_scan_and_trigram_search": {
                    "met": all(p["ok"] for p in result["explain"]),
                    "problems": [x for p in result["explain"] for x in p["problems"]],
                },
            }
        )
        targets.update(_finder_depth_targets(result["scenarios"]))
        baseline = report.match_baseline(result["readme_baseline"], [s["name"] for s in result["scenarios"]])
        compared = [
            (s["name"], s["handler"]["median_ms"], baseline[s["name"]])
            for s in result["scenarios"]
            if s["name"] in baseline
        ]
        slower = [
            {"scenario": n, "median_ms": m, "readme_ms": b, "change": round(m / b - 1, 3)}
            for n, m, b in compared
            if m > b
        ]
        targets["loopback_not_slower_than_readme_table"] = {
            "met": bool(compared) and not slower,
            "compared": len(compared),
            "slower": slower,
            "not_in_readme": [s["name"] for s in result["scenarios"] if s["name"] not in baseline],
        }
    modeled = result["modeled"]
    for wanted, key in (
        ("list (default)", "modeled_list_le_half_of_flask_ref"),
        ("get by id", "modeled_get_by_id_le_half_of_flask_ref"),
    ):
        found = next((s for s in modeled if s["name"] == wanted and "over_flask_ref" in s), None)
        if found:
            targets[key] = {"met": found["over_flask_ref"] <= 0.5, "ratio": found["over_flask_ref"]}
    # Over whole sessions only: a scenario of fewer requests than a session would count its one
    # first-request invocation over too few requests.
    session = result["network"].get("session_requests", 0)
    protected = [s for s in modeled if s["protected"] and s["requests"] >= session]
    if protected:
        worst = max(protected, key=lambda s: s["authorizer_invocations_per_request"])
        targets["authorizer_invocations_le_0_05_per_request"] = {
            "met": worst["authorizer_invocations_per_request"] <= 0.05,
            "worst": {"scenario": worst["name"], "per_request": worst["authorizer_invocations_per_request"]},
        }
    over_budget = []
    for s in modeled:
        if s["name"] == "login":
            continue
        pg_cap, redis_cap = WRITE_BUDGET if s["method"] != "GET" else READ_BUDGET
        if s["round_trips"]["pg"] > pg_cap or s["round_trips"]["redis"] > redis_cap:
            over_budget.append({"scenario": s["name"], **s["round_trips"]})
    if modeled:
        targets["round_trips_within_budget"] = {"met": not over_budget, "over": over_budget}
    for name, figures in cold.items():
        if not isinstance(figures, dict) or "api" not in figures:
            continue
        targets[f"cold_{name}_authorizer_le_35pct_of_api"] = {
            "met": figures["authorizer_share_of_api"] <= 0.35,
            "share": figures["authorizer_share_of_api"],
        }
        targets[f"cold_{name}_restored_first_request_le_3x_warm"] = {
            "met": figures["restored"]["first_over_warm"] <= 3,
            "ratio": figures["restored"]["first_over_warm"],
        }
        if "api_over_flask_ref" in figures:
            targets[f"cold_{name}_api_le_0_9x_flask_ref"] = {
                "met": figures["api_over_flask_ref"] <= 0.9,
                "ratio": figures["api_over_flask_ref"],
            }
    counted = cold.get("instructions") or {}
    if "api_over_flask_ref" in counted:
        targets["cold_instructions_api_le_0_9x_flask_ref"] = {
            "met": counted["api_over_flask_ref"] <= 0.9,
            "ratio": counted["api_over_flask_ref"],
        }
    if "handler_process" in cold:
        targets["handler_process_rss_le_150mb"] = {
            "met": cold["handler_process"]["peak_rss_mb"] <= 150,
            "peak_rss_mb": cold["handler_process"]["peak_rss_mb"],
        }
    return targets


def _finder_depth_targets(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The broadest terms' first request after a write (<= 100 ms), a cursor page 50,000 rows in
    against page 1 of its order (<= 1.5x), page 400 x 25 (<= 25 ms); medians, loopback."""
    by_name = {s["name"]: s["handler"] for s in measured}
    targets: dict[str, Any] = {}
    broad = {n: h["median_ms"] for n, h in by_name.items() if n.startswith("search broad after a write")}
    if broad:
        targets["broadest_terms_first_request_le_100ms"] = {
            "met": all(v <= 100 for v in broad.values()),
            "median_ms": broad,
        }
    ratios = {}
    for name, handler in by_name.items():
        if name.startswith("cursor page at depth"):
            order = name.rsplit("(", 1)[1].rstrip(")")
            first = by_name.get("list (default)" if order == "start_datetime desc" else f"page 1 ({order})")
            if first:
                ratios[order] = round(handler["median_ms"] / first["median_ms"], 2)
    if ratios:
        targets["cursor_page_le_1_5x_page_1"] = {
            "met": all(r <= 1.5 for r in ratios.values()),
            "ratio": ratios,
        }
    deep = {n: h["median_ms"] for n, h in by_name.items() if n.startswith("deep page (page=400")}
    if deep:
        targets["page_400_le_25ms"] = {"met": all(v <= 25 for v in deep.values()), "median_ms": deep}
    return targets


def _print_summary(result: dict[str, Any], path: Any) -> None:
    m = result["machine"]
    print(
        f"\n{m['cpu']}, {m['cores']} cores, Python {m['python']}, PostgreSQL {m['postgresql']} "
        f"({m['database_server']}); load average {m['load_average_at_start']} at the start, "
        f"{m['load_average_at_end']} at the end\n"
    )
    fr = result["flask_ref"]
    if "info" in fr:
        print(
            f"seed stack: {fr['anchor']} ({', '.join(f'{k} {v}' for k, v in fr['info']['packages'].items())}); "
            f"{fr['info']['rows']:,} rows, {fr['info']['site1_rows']:,} in site 1\n"
        )
    else:
        print(f"seed stack: {fr['note']}\n")
    if result["scenarios"]:
        print("LOOPBACK\n" + report.table(result["scenarios"]))
        compared = report.comparison_table(result["scenarios"])
        if compared:
            print("\nloopback, beside the seed stack (same run, alternating blocks)\n" + compared)
    login = next((s for s in result["scenarios"] if s["name"] == "login"), None)
    if login:
        print(
            f"\nlogin: {login['handler']['median_ms']:.1f} ms median, of which the SQL floor "
            f"{login['floor']['median_ms']:.1f} ms; the rest is argon2id verification by design"
        )
    for plan in result["explain"]:
        status = "ok " if plan["ok"] else "BAD"
        used = sorted({i for q in plan["queries"] for i in q["indexes"]})
        print(
            f"EXPLAIN {status} {plan['scenario']}: {', '.join(used) or '-'}"
            + ("".join(f"\n    {p}" for p in plan["problems"]))
        )
    net = result["network"]
    if result["modeled"]:
        cal = net["calibration"]
        print(
            f"\nMODELED NETWORK: +{net['model']['pg_delay_ms_each_way']} ms each way to PostgreSQL "
            f"(measured round trip {cal['pg']['median_ms']} ms), +{net['model']['redis_delay_ms_each_way']} ms "
            f"each way to Redis ({cal['redis']['median_ms']} ms); authorizer cache "
            f"{net['authorizer_cache_ttl_s']:g} s, sessions of {net['session_requests']} requests"
        )
        print(report.network_table(result["modeled"]))
    cold = result["cold_start"]
    table = report.cold_table(cold)
    if table:
        print(
            "\nCOLD START (fresh processes, medians; our children cannot import what the Lambda bundle "
            "lacks: cryptography, and every other module outside requirements.txt, chalice and boto3)\n"
            + table
        )
    if "handler_process" in cold:
        print(
            f"handler process peak RSS {cold['handler_process']['peak_rss_mb']} MB "
            f"({cold['handler_process']['requests']} requests of every read scenario, login included)"
        )
    if "imports" in cold:
        for who, figures in cold["imports"].items():
            top = ", ".join(f"{k} {v}" for k, v in list(figures["by_package_ms"].items())[:10])
            print(f"imports of the cold path ({who}): {figures['total_ms']} ms: {top}")
    if cold.get("instructions"):
        counted, counts = cold["instructions"], cold["instructions"]["millions"]
        print(
            f"instructions (callgrind, millions), whole cold process: API {counts['api']}, "
            f"authorizer {counts['authorizer']}, interpreter alone {counts['interpreter']}"
            + (
                f", seed stack {counts['flask_ref']} ({counted['api_over_flask_ref']:.2f}x)"
                if "flask_ref" in counts
                else ""
            )
        )
    if "importtime_app" in cold:
        print(
            f"python -X importtime -c 'import app': {cold['importtime_app']['median_ms']} ms; "
            f"authorizer module: {cold['importtime_authorizer']['median_ms']} ms"
        )
    print(f"benchmark process peak RSS: {result['memory']['benchmark_process_peak_rss_mb']} MB")
    print("\ntargets:")
    for name, t in result["targets"].items():
        detail = {k: v for k, v in t.items() if k != "met"}
        print(f"  {'met   ' if t['met'] else 'MISSED'} {name}  {json.dumps(detail, default=str)[:300]}")
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
