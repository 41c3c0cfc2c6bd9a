"""The benchmark's data: 1,000,000 interactions across 10 sites (the first holding >= 100,000), seeded
once with the operator's own command (`python -m chalicelib.cli seed-demo`) and reused afterwards.

Seeding runs in child processes (migrate, seed-demo), so the benchmark process's memory and imports
are those of a handler process. Reuse needs the schema at the newest migration, the sites, and at
least 99 % of the rows; anything else (an interrupted seed, another size) is dropped and seeded again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench import environment
from devtools import embedded

ROOT = Path(__file__).resolve().parent.parent
# The bench database's demo users only; the benchmark logs in with it.
BENCH_PASSWORD = "bench-demo-password"
DEMO_USER = "demo"
# The last seed's timing per database name, kept for the runs that reuse it.
SEED_RECORD = ROOT / "bench" / "results" / f"seed-{environment.BENCH_DATABASE}.json"


def cli(*args: str, quiet: bool = False, stdin: str | None = None) -> None:
    """Run `python -m chalicelib.cli ...` against the bench database (its progress bar shows),
    `stdin` written to its standard input."""
    command = [sys.executable, "-m", "chalicelib.cli", *args]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=environment.subprocess_env(),
        stdout=subprocess.DEVNULL if quiet else None,
        input=stdin,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: `{' '.join(command[1:])}` failed with status {result.returncode}")


def data_state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('interactions')")).scalar() is None:
            return {"rows": 0, "sites": 0, "events": 0, "by_site": []}
        by_site = conn.execute(
            text("SELECT site_id, count(*) AS n FROM interactions GROUP BY site_id ORDER BY n DESC, site_id")
        ).all()
        sites = conn.execute(text("SELECT count(*) FROM sites")).scalar_one()
        # The seed records one event per row (migration 0007 on): the audit scenarios read them.
        events = 0
        if conn.execute(text("SELECT to_regclass('audit_events')")).scalar() is not None:
            events = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    return {
        "rows": sum(n for _, n in by_site),
        "sites": sites,
        "events": events,
        "by_site": [{"site_id": s, "rows": n} for s, n in by_site],
    }


def _usable(state: dict[str, Any], *, rows: int, sites: int, big_site_rows: int) -> bool:
    by_site = state["by_site"]
    return (
        rows * 0.99 <= state["rows"] <= rows * 1.01
        and state["sites"] >= sites
        and bool(by_site)
        and by_site[0]["rows"] >= big_site_rows
        and state.get("events", 0) >= rows * 0.99
    )


def _recreate_database(admin_url: str, database: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            others = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": database},
            ).scalar_one()
            if others:
                raise SystemExit(
                    f"bench: {database} holds other data and has {others} other connection(s); "
                    "not dropping it while in use"
                )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            embedded.create_database(conn, database)
    finally:
        engine.dispose()


def ensure(engine: Engine, *, rows: int, sites: int, big_site_rows: int) -> dict[str, Any]:
    """Seed the bench database unless it already holds the data set; returns what was done."""
    settings = environment.configure()
    cli("migrate", quiet=True)
    state = data_state(engine)
    info: dict[str, Any] = {
        "database": environment.BENCH_DATABASE,
        "server": settings["BENCH_SERVER"],
        "target_rows": rows,
        "sites": sites,
    }
    if _usable(state, rows=rows, sites=sites, big_site_rows=big_site_rows):
        print(
            f"bench: reusing {environment.BENCH_DATABASE}: {state['rows']:,} interactions in "
            f"{len(state['by_site'])} sites (biggest: {state['by_site'][0]['rows']:,})"
        )
        # Known credentials for the demo user: seed-demo makes the accounts that are missing but
        # leaves an existing one's password alone, and a reused database may have been seeded by hand.
        cli(
            "seed-demo",
            "--sites",
            str(sites),
            "--interactions",
            "0",
            "--password",
            BENCH_PASSWORD,
            quiet=True,
        )
        cli("set-password", DEMO_USER, "--password-stdin", quiet=True, stdin=BENCH_PASSWORD + "\n")
        info.update(reused=True)
        if SEED_RECORD.exists():  # how long the seed of the reused data set took
            info["original_seed"] = json.loads(SEED_RECORD.read_text())
    else:
        if state["rows"]:
            print(
                f"bench: {environment.BENCH_DATABASE} holds {state['rows']:,} interactions and "
                f"{state['events']:,} audit events, not the {rows:,} of each wanted: seeding it again"
            )
            engine.dispose()
            _recreate_database(settings["BENCH_ADMIN_DATABASE_URL"], environment.BENCH_DATABASE)
            cli("migrate", quiet=True)
        print(
            f"bench: seeding {rows:,} interactions across {sites} sites into "
            f"{environment.BENCH_DATABASE} ({settings['BENCH_SERVER']})",
            flush=True,
        )
        started = time.perf_counter()
        cli("seed-demo", "--sites", str(sites), "--interactions", str(rows), "--password", BENCH_PASSWORD)
        seconds = time.perf_counter() - started
        print(f"bench: seeded {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s", flush=True)
        info.update(reused=False, seed_seconds=round(seconds, 1), rows_per_second=round(rows / seconds))
        SEED_RECORD.parent.mkdir(exist_ok=True)
        SEED_RECORD.write_text(
            json.dumps(
                {
                    k: info[k]
                    for k in ("database", "server", "target_rows", "sites", "seed_seconds", "rows_per_second")
                },
                indent=2,
            )
            + "\n"
        )
        state = data_state(engine)
        if not _usable(state, rows=rows, sites=sites, big_site_rows=big_site_rows):
            raise SystemExit(f"bench: the seed did not produce the data set wanted: {state}")
    # Visibility map and statistics as a settled database has them (index-only scans, good plans).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.execute(text("VACUUM (ANALYZE) interactions"))
        info["vacuum_analyze_seconds"] = round(time.perf_counter() - started, 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) audit_events"))
    info.update(rows=state["rows"], events=state["events"], by_site=state["by_site"])
    return info
