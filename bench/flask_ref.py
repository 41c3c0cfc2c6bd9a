"""The seed stack (`shared/anchors/flask_ref`: Flask 3, Flask-SQLAlchemy on psycopg2, Flask-JWT-Extended
with a Redis blocklist, marshmallow) measured beside ours in the same run, as the yardstick.

- Its environment: `.devdata/flask-ref-venv`, created from `bench/flask_ref-requirements.txt` (pinned)
  and re-created when that file changes.
- Its data: its own `seed.py N --big-share S` (the same number of rows and the same share in the
  first site as ours), into its own database `bench_flask_ref` on the same server; reused while
  the row counts match.
- Its requests: a worker process (bench/flask_ref_worker.py) in that environment runs N requests of a
  scenario through Flask's test client on command and reports their timings, so its blocks can
  alternate with ours; its DATABASE_URL / REDIS_URL point at the same servers, or the same relays.
- Its cold start: the child of its own `bench.py --coldstart` (import app, create_app(), first list
  request), taken from that file, run interleaved with ours.

Nothing is written into the anchor's directory (its processes run with PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ANCHOR = ROOT.parent / "shared" / "anchors" / "flask_ref"
VENV = ROOT / ".devdata" / "flask-ref-venv"
REQUIREMENTS = ROOT / "bench" / "flask_ref-requirements.txt"
WORKER = ROOT / "bench" / "flask_ref_worker.py"
DATABASE = "bench_flask_ref"
SEED_RECORD = ROOT / "bench" / "results" / f"seed-{DATABASE}.json"
FILES = ("app.py", "seed.py", "bench.py")

# Our scenario (by the start of its name) -> the seed stack's request for the same thing. Its search
# reads the whole table's trigram index (it has no site-first one), so its common search gets fewer
# requests.
PAIRS: list[tuple[str, str, int | None]] = [
    ("get by id", "/api/interactions/{mid_id}", None),
    ("list (default)", "/api/interactions", None),
    ("search common", "/api/interactions?search=review", 20),
    ("search rare", "/api/interactions?search=kestrel", None),
    ("deep page (page=400)", "/api/interactions?page=400", None),
]


def locate(anchor: str | None) -> Path | None:
    path = Path(anchor) if anchor else DEFAULT_ANCHOR
    return path.resolve() if all((path / name).is_file() for name in FILES) else None


def pair_for(scenario_name: str) -> tuple[str, int | None] | None:
    for prefix, path, cap in PAIRS:
        if scenario_name.startswith(prefix):
            return path, cap
    return None


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv() -> Path:
    """The seed stack's interpreter, its environment created or renewed from the pinned file."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == _digest():
        return python
    print(f"bench: installing the seed stack's environment into {VENV.relative_to(ROOT)}", flush=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(_digest() + "\n")
    return python


def environment(*, database_url: str, redis_url: str, jwt_secret: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JWT_", "BENCH_", "AWS_LAMBDA_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        JWT_SECRET_KEY=jwt_secret,
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    env.pop("PYTHONPATH", None)
    return env


def _state(admin_engine_url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(admin_engine_url).set(database=DATABASE))
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT to_regclass('interactions')")).scalar() is None:
                return {"rows": 0, "site1_rows": 0, "indexes": []}
            rows, site1 = conn.execute(
                text("SELECT count(*), count(*) FILTER (WHERE site_id = 1) FROM interactions")
            ).one()
            indexes = sorted(
                conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'interactions'")
                ).scalars()
            )
    finally:
        engine.dispose()
    return {"rows": rows, "site1_rows": site1, "indexes": indexes}


def ensure_seeded(
    python: Path, anchor: Path, *, admin_url: str, seed_url: str, redis_url: str, rows: int, big_share: float
) -> dict[str, Any]:
    """Seed the seed stack's database with its own seed.py unless it holds that data set already."""
    from devtools import embedded

    embedded.ensure_database(admin_url, DATABASE)
    want_site1 = round(rows * big_share)
    state = _state(admin_url)
    info: dict[str, Any] = {
        "database": DATABASE,
        "rows": rows,
        "big_share": big_share,
        "command": f"seed.py {rows} --big-share {big_share}",
    }
    usable = (
        state["rows"] == rows
        and state["site1_rows"] == want_site1
        and {"ix_interactions_site_start_id", "ix_interactions_search_trgm"} <= set(state["indexes"])
    )
    if usable:
        print(f"bench: reusing {DATABASE}: {rows:,} interactions, {want_site1:,} in site 1", flush=True)
        info["reused"] = True
        if SEED_RECORD.exists():
            info["original_seed"] = json.loads(SEED_RECORD.read_text())
    else:
        print(
            f"bench: seeding the seed stack's {DATABASE} with its seed.py ({rows:,} rows, "
            f"{big_share:.0%} in site 1)",
            flush=True,
        )
        started = time.perf_counter()
        subprocess.run(
            [str(python), "seed.py", str(rows), "--big-share", str(big_share)],
            cwd=anchor,
            env=environment(database_url=seed_url, redis_url=redis_url, jwt_secret=secrets.token_urlsafe(48)),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = round(time.perf_counter() - started, 1)
        state = _state(admin_url)
        if state["rows"] != rows or state["site1_rows"] != want_site1:
            raise SystemExit(f"bench: the seed stack's seed did not produce the data set wanted: {state}")
        print(f"bench: seeded {DATABASE} in {seconds} s", flush=True)
        info.update(reused=False, seed_seconds=seconds)
        SEED_RECORD.parent.mkdir(exist_ok=True)
        SEED_RECORD.write_text(
            json.dumps({"database": DATABASE, "command": info["command"], "seed_seconds": seconds}, indent=2)
            + "\n"
        )
    info.update(site1_rows=state["site1_rows"], indexes=state["indexes"])
    return info


class Worker:
    """A running flask_ref_worker.py and its pipe."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self._process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    @classmethod
    def start(cls, python: Path, anchor: Path, env: dict[str, str]) -> Worker:
        return cls([str(python), str(WORKER), str(anchor)], env)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the reply (none) says it
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the seed stack's worker ended (status {self._process.wait()})")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(
                f"the seed stack's worker: {answer.get('error')}\n{answer.get('traceback', '')}"
            )
        return answer

    def run(self, path: str, n: int) -> list[int]:
        """n requests of `path`; their timings in nanoseconds, measured inside the worker."""
        return self.call("run", path=path, n=n)["ns"]

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self.call("quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def coldstart_child(anchor: Path) -> str:
    """The seed stack's own cold-start child (`CHILD` in its bench.py): import app, create_app(),
    and with the argument `request` the first list request; it prints import-to-ready ms,
    import-to-done ms and ru_maxrss. A line with the process's own peak RSS is added (ru_maxrss
    can carry a parent's peak over execve)."""
    tree = ast.parse((anchor / "bench.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "CHILD" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return (
                node.value.value
                + """
with open("/proc/self/status") as _status:
    print("VmHWM", next(int(_l.split()[1]) for _l in _status if _l.startswith("VmHWM:")))"""
            )
    raise SystemExit(f"bench: no CHILD string in {anchor / 'bench.py'}")


def run_coldstart_child(python: Path, anchor: Path, code: str, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(python), "-c", code, "request"], cwd=anchor, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"the seed stack's cold-start child failed: {result.stderr[-2000:]}")
    lines = result.stdout.split("\n")
    ready, done, _maxrss = map(float, lines[0].split())
    peak_kb = next(int(ln.split()[1]) for ln in lines if ln.startswith("VmHWM"))
    return {
        "seconds": done / 1000,
        "first_import_seconds": ready / 1000,
        "process_wall_seconds": wall,
        "peak_rss_mb": peak_kb / 1024,
        "status": 200,
        "heavy_modules": [],
    }
