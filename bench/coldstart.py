"""Cold starts, measured in fresh processes, and `python -X importtime` totals.

- API path: a new interpreter imports `app` and serves its first authenticated list request (the
  authorizer context is given, as API Gateway gives it to the API Lambda).
- Authorizer path: a new interpreter imports `chalicelib.auth.authorizer` and verifies one token.

Both report their own clock (from before the first import of ours to the answer), the wall time
of the whole process as the parent saw it (interpreter start-up included), the peak RSS, and which
heavy libraries ended up imported. Runs alternate between the two paths; medians are reported.
"""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import environment

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["sqlalchemy", "pydantic", "argon2", "boto3", "botocore", "pg8000", "cryptography", "redis", "jwt"]

_PRELUDE = """
import json, os, resource, sys, time
started = time.perf_counter()
"""

# ru_maxrss survives execve on Linux (a child would report its parent's peak), so the child reads
# its own high-water mark from /proc, falling back to ru_maxrss elsewhere.
_EPILOGUE = """
done = time.perf_counter()
heavy = [m for m in json.loads(os.environ["BENCH_HEAVY"]) if m in sys.modules]
try:
    with open("/proc/self/status") as status_file:
        peak_kb = next(int(ln.split()[1]) for ln in status_file if ln.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCH-RESULT " + json.dumps({"seconds": done - started, "first_import_seconds": imported - started,
      "status": status, "heavy_modules": heavy, "peak_rss_mb": peak_kb / 1024}))
"""

API_CHILD = _PRELUDE + """
import app
imported = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
status = app.app(event, None)["statusCode"]
""" + _EPILOGUE

AUTHORIZER_CHILD = _PRELUDE + """
from chalicelib.auth.authorizer import jwt_authorizer
imported = time.perf_counter()
result = jwt_authorizer(json.loads(os.environ["BENCH_TOKEN_EVENT"]), None)
status = result["context"]["auth"]
""" + _EPILOGUE

# A handler process that has served a bit of everything, argon2 included: its peak RSS.
HANDLER_MIX_CHILD = _PRELUDE + """
import app
imported = time.perf_counter()
for event in json.loads(os.environ["BENCH_EVENTS"]):
    for _ in range(3):
        status = app.app(event, None)["statusCode"]
        assert status < 300, status
""" + _EPILOGUE


def _run_child(code: str, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"cold-start child failed ({result.returncode}): {result.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH-RESULT "))
    data["process_wall_seconds"] = wall
    return data


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def ms(key: str) -> float:
        return round(statistics.median(r[key] for r in runs) * 1000, 1)

    return {
        "runs": len(runs),
        "median_ms": ms("seconds"),
        "median_import_ms": ms("first_import_seconds"),
        "median_process_wall_ms": ms("process_wall_seconds"),
        "min_ms": round(min(r["seconds"] for r in runs) * 1000, 1),
        "max_ms": round(max(r["seconds"] for r in runs) * 1000, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "heavy_modules": runs[-1]["heavy_modules"],
        "status": runs[-1]["status"],
    }


def measure(*, list_event: dict[str, Any], token_event: dict[str, Any], runs: int = 7) -> dict[str, Any]:
    env = environment.subprocess_env(BENCH_HEAVY=json.dumps(HEAVY), BENCH_EVENT=json.dumps(list_event),
                                     BENCH_TOKEN_EVENT=json.dumps(token_event))
    api, authorizer = [], []
    for _ in range(runs):
        api.append(_run_child(API_CHILD, env))
        authorizer.append(_run_child(AUTHORIZER_CHILD, env))
    if any(r["status"] != 200 for r in api) or any(r["status"] != "ok" for r in authorizer):
        raise RuntimeError(f"cold-start requests failed: {api[-1]} {authorizer[-1]}")
    result = {"api": _summary(api), "authorizer": _summary(authorizer)}
    result["authorizer_share_of_api"] = round(result["authorizer"]["median_ms"] / result["api"]["median_ms"], 3)
    return result


def handler_peak_rss(events: list[dict[str, Any]]) -> dict[str, Any]:
    env = environment.subprocess_env(BENCH_HEAVY=json.dumps(HEAVY), BENCH_EVENTS=json.dumps(events))
    data = _run_child(HANDLER_MIX_CHILD, env)
    return {"peak_rss_mb": round(data["peak_rss_mb"], 1), "requests": 3 * len(events)}


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def importtime(module: str, runs: int = 5) -> dict[str, Any]:
    """`python -X importtime -c "import <module>"`: the module's cumulative time (median of runs)
    and the biggest top-level contributors of the last run."""
    env = environment.subprocess_env()
    own, everything, last = [], [], []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        rows = [m for m in (_IMPORTTIME.match(ln) for ln in result.stderr.splitlines()) if m]
        if result.returncode != 0 or not rows:
            raise RuntimeError(f"importtime of {module} failed: {result.stderr[-2000:]}")
        top = [m for m in rows if len(m.group(3)) == 1]
        own.append(next(int(m.group(2)) for m in top if m.group(4) == module))
        everything.append(sum(int(m.group(2)) for m in top))
        last = rows
    nested = sorted(((m.group(4), int(m.group(2))) for m in last if len(m.group(3)) in (3, 5)),
                    key=lambda item: -item[1])
    return {"module": module, "runs": runs,
            "median_ms": round(statistics.median(own) / 1000, 1),
            "median_with_interpreter_startup_imports_ms": round(statistics.median(everything) / 1000, 1),
            "biggest": [{"module": name, "cumulative_ms": round(us / 1000, 1)} for name, us in nested[:12]]}
