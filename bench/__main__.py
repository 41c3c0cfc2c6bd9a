"""`make bench` / `python -m bench`: seed (or reuse) the data set, then time every scenario through
the real handlers, interleaved with its SQL replayed on a raw pg8000 connection (the floor), check
the query plans, measure cold starts and memory, print the table and write bench/results/*.json.
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

from bench import coldstart, environment, report, scenarios, seed
from bench.events import Call, Prepared
from bench.floor import Capture, Floor

WARMUP = 3


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="interactions in the data set")
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100, help="timed requests per scenario")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh processes per cold-start path")
    parser.add_argument("--only", help="run only the scenarios whose name contains this text")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--output", help="file name under bench/results/ (default: bench-<time>.json)")
    return parser.parse_args(argv)


def _quiet_access_log() -> None:
    """The middleware's one JSON line per request still gets formatted and written, to /dev/null
    rather than the terminal, so that the table stays readable."""
    import logging

    for name in ("interactions.access", "interactions.error"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


class Runner:
    def __init__(self, app: Any, authorizer: Any, engine: Any, floor: Floor) -> None:
        self.app, self.authorizer, self.engine, self.floor = app, authorizer, engine, floor

    def call(self, prepared: Prepared) -> tuple[dict[str, Any], int]:
        response, authorizer_ns = prepared.invoke(self.app, self.authorizer)
        expected = prepared.call.expect
        if response["statusCode"] != expected:
            raise RuntimeError(f"{prepared.call.method} {prepared.call.path}: expected {expected}, "
                               f"got {response['statusCode']}: {response['body'][:500]}")
        return response, authorizer_ns

    def measure(self, scenario: scenarios.Scenario, iterations: int) -> dict[str, Any]:
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
        handler_ns, authorizer_ns, floor_ns = [], [], []
        gc.collect()
        for i in range(iterations):
            # Alternate which goes first, so that neither always runs on a cache the other warmed.
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
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
        handler, floor = report.stats(handler_ns), report.stats(floor_ns)
        return {
            "name": scenario.name, "group": scenario.group, "method": call.method, "path": call.path,
            "status": call.expect, "handler": handler, "authorizer": report.stats(authorizer_ns),
            "floor": floor,
            "ratio": round(handler["median_ms"] / floor["median_ms"], 2),
            "overhead_ms": round(handler["median_ms"] - floor["median_ms"], 3),
            "first_request_ms": first_ms,
            "statements": len(statements),
            "sql": [s.sql for s in statements],
            "first_request_sql": [s.sql for s in first.statements],
            "_captured": first.statements, "_prepared": prepared,
        }


def _login(runner: Runner, site_id: int) -> tuple[str, int]:
    body = {"username": seed.DEMO_USER, "password": seed.BENCH_PASSWORD}
    response, _ = runner.call(Prepared(Call("POST", "/api/auth/login", "/api/auth/login", body=body)))
    data = json.loads(response["body"])["data"]
    token = data["token"]
    if (data.get("current_site") or {}).get("id") != site_id:
        response, _ = runner.call(Prepared(Call("POST", "/api/auth/site", "/api/auth/site",
                                                body={"site_id": site_id}, token=token)))
        token = json.loads(response["body"])["data"]["token"]
    return token, data["user"]["id"]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    settings = environment.configure()
    from chalicelib.config import normalise_database_url

    own_engine = create_engine(normalise_database_url(settings["DATABASE_URL"]), pool_size=2)
    seed_info = seed.ensure(own_engine, rows=args.rows, sites=args.sites, big_site_rows=args.rows // 10)
    site_id, site_rows = seed_info["by_site"][0]["site_id"], seed_info["by_site"][0]["rows"]

    import app as app_module
    from chalicelib import db
    from chalicelib.auth.authorizer import jwt_authorizer
    from chalicelib.config import get_settings

    _quiet_access_log()
    engine = db.get_engine()
    floor = Floor(engine, statement_timeout_ms=get_settings().db_statement_timeout_ms)
    runner = Runner(app_module.app, jwt_authorizer, engine, floor)
    with own_engine.connect() as conn:
        postgres_version = conn.execute(text("SHOW server_version")).scalar_one()

    token, user_id = _login(runner, site_id)
    scenarios.remove_bench_rows(own_engine)  # left over by an interrupted run
    fixture = scenarios.prepare_fixture(own_engine, site_id=site_id, site_rows=site_rows)
    planned = scenarios.build(fixture, routes=app_module.app.routes, token=token, engine=own_engine,
                              user_id=user_id,
                              login_body={"username": seed.DEMO_USER, "password": seed.BENCH_PASSWORD})
    if args.only:
        planned = [s for s in planned if args.only in s.name]

    print(f"\nbench: {len(planned)} scenarios x {args.iterations} requests (handler and floor interleaved), "
          f"site {site_id} with {site_rows:,} of {seed_info['rows']:,} interactions\n", flush=True)
    measured = []
    for scenario in planned:
        result = runner.measure(scenario, scenario.iterations or args.iterations)
        measured.append(result)
        print(report.table([result]).splitlines()[-1], flush=True)
    removed = scenarios.remove_bench_rows(own_engine)

    from bench import explain

    plans = []
    for scenario, result in zip(planned, measured, strict=True):
        if scenario.checks_plan:
            plans.append(explain.check(floor, scenario.name, result["_captured"],
                                       wants_trigram=scenario.name.startswith("search")))

    cold: dict[str, Any] = {}
    if not args.skip_cold_start:
        by_name = {r["name"]: r for r in measured}
        listing = by_name.get("list (default)")
        if listing:
            prepared = listing["_prepared"]
            cold = coldstart.measure(list_event=prepared.event, token_event=prepared.token_event,
                                     runs=args.cold_runs)
            mix = [r["_prepared"].event for r in measured
                   if r["group"] in ("auth", "finder") and r["status"] == 200]
            cold["handler_process"] = coldstart.handler_peak_rss(mix)
        cold["importtime_app"] = coldstart.importtime("app")
        cold["importtime_authorizer"] = coldstart.importtime("chalicelib.auth.authorizer")
    scenarios.remove_bench_rows(own_engine)

    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in measured]
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make bench  (python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]) + ")",
        "machine": {**report.machine(postgres_version, settings["BENCH_SERVER"]),
                    "load_average_at_start": load_at_start},
        "data": {**seed_info, "benchmark_site_id": site_id, "benchmark_site_rows": site_rows,
                 "fixture": vars(fixture), "bench_rows_removed": removed},
        "iterations": args.iterations,
        "scenarios": public,
        "explain": plans,
        "cold_start": cold,
        "memory": {"benchmark_process_peak_rss_mb": peak_rss_mb},
    }
    result["targets"] = _targets(result)
    path = report.write(result, args.output)
    _print_summary(result, path)
    own_engine.dispose()
    floor.close()
    return 0 if all(p["ok"] for p in plans) else 1


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    scen = [s for s in result["scenarios"] if s["name"] != "login"]
    finder = [s for s in result["scenarios"] if s["group"] == "finder"]
    cold = result["cold_start"]
    worst_overhead = max(scen, key=lambda s: s["overhead_ms"], default=None)
    worst_p95 = max(finder, key=lambda s: s["handler"]["p95_ms"], default=None)
    targets: dict[str, Any] = {
        "overhead_le_1ms_except_login": {
            "met": all(s["overhead_ms"] <= 1.0 for s in scen),
            "worst": worst_overhead and {"scenario": worst_overhead["name"], "overhead_ms": worst_overhead["overhead_ms"]},
            "over": [s["name"] for s in scen if s["overhead_ms"] > 1.0]},
        "finder_p95_le_50ms": {
            "met": all(s["handler"]["p95_ms"] <= 50 for s in finder),
            "worst": worst_p95 and {"scenario": worst_p95["name"], "p95_ms": worst_p95["handler"]["p95_ms"]}},
        "no_seq_scan_and_trigram_search": {"met": all(p["ok"] for p in result["explain"]),
                                           "problems": [x for p in result["explain"] for x in p["problems"]]},
        "benchmark_process_rss_le_150mb": {"met": result["memory"]["benchmark_process_peak_rss_mb"] <= 150},
    }
    if "authorizer_share_of_api" in cold:
        targets["authorizer_cold_le_35pct_of_api"] = {"met": cold["authorizer_share_of_api"] <= 0.35,
                                                      "share": cold["authorizer_share_of_api"]}
        targets["handler_process_rss_le_150mb"] = {"met": cold["handler_process"]["peak_rss_mb"] <= 150}
    return targets


def _print_summary(result: dict[str, Any], path: Any) -> None:
    m = result["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, Python {m['python']}, PostgreSQL {m['postgresql']} "
          f"({m['database_server']}); load average {m['load_average_at_start']} at the start, "
          f"{m['load_average_at_end']} at the end\n")
    print(report.table(result["scenarios"]))
    login = next((s for s in result["scenarios"] if s["name"] == "login"), None)
    if login:
        print(f"\nlogin: {login['handler']['median_ms']:.1f} ms median, of which the SQL floor "
              f"{login['floor']['median_ms']:.1f} ms; the rest is argon2id verification by design")
    for plan in result["explain"]:
        status = "ok " if plan["ok"] else "BAD"
        used = sorted({i for q in plan["queries"] for i in q["indexes"]})
        print(f"EXPLAIN {status} {plan['scenario']}: {', '.join(used) or '-'}"
              + ("".join(f"\n    {p}" for p in plan["problems"])))
    cold = result["cold_start"]
    if "api" in cold:
        api, auth = cold["api"], cold["authorizer"]
        print(f"\ncold start (median of {api['runs']}): API import app + first list request "
              f"{api['median_ms']} ms (import {api['median_import_ms']} ms, process wall "
              f"{api['median_process_wall_ms']} ms); authorizer import + one token {auth['median_ms']} ms "
              f"(import {auth['median_import_ms']} ms) = {cold['authorizer_share_of_api']:.0%} of the API path; "
              f"authorizer loaded: {', '.join(auth['heavy_modules'])}")
        print(f"handler process peak RSS {cold['handler_process']['peak_rss_mb']} MB, "
              f"API cold process {api['peak_rss_mb']} MB, authorizer cold process {auth['peak_rss_mb']} MB")
    if "importtime_app" in cold:
        print(f"python -X importtime -c 'import app': {cold['importtime_app']['median_ms']} ms; "
              f"authorizer module: {cold['importtime_authorizer']['median_ms']} ms")
    print(f"benchmark process peak RSS: {result['memory']['benchmark_process_peak_rss_mb']} MB")
    print("\ntargets: " + ", ".join(f"{name} {'met' if t['met'] else 'MISSED'}"
                                     for name, t in result["targets"].items()))
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
