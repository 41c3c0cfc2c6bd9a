"""Cold starts, measured in fresh processes, side by side with the seed stack, and where the time goes.

- API path, no snapshot: a new interpreter imports `app` and serves its first authenticated list
  request (the authorizer context is given, as API Gateway gives it to the API Lambda). Beside it,
  the seed stack's own cold-start child (import app, create_app(), first list request).
- API path, restored: a process does its init as a SnapStart init does
  (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`: chalicelib/lifecycle.py primes), runs
  `lifecycle.before_snapshot()`, then `lifecycle.after_restore()` and the first request; that
  request against the warm median of the same request in the same process.
- Authorizer path: a new interpreter imports `chalicelib.auth.authorizer` and verifies one token.

Our children emulate the Lambda bundle: modules of the development environment that the bundle
does not have (`cryptography`, which PyJWT would pick up, and everything else outside
requirements.txt, chalice and the runtime's boto3) cannot be imported (`bundle_lacks()`).
Each child reports its own clock (from before the first import of ours to the answer), the wall
time of the whole process as the parent saw it (interpreter start-up included), the peak RSS, and
which heavy libraries ended up imported. Runs rotate through the paths; medians are reported.

Bytecode: the Lambda bundle carries the runtime's bytecode for every module (deploy/bytecode.py),
so a cold start never compiles a source. The children get the same, both stacks alike: a cache
folder of the run (`PYTHONPYCACHEPREFIX`, `bytecode_cache()`) is filled by one unmeasured run of
each child, then every measured child reads its bytecode from there (and writes nothing). Without
it, each child would compile its stack's own code on every start (this machine sets
`PYTHONDONTWRITEBYTECODE`), which no deployed cold start does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import environment

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["sqlalchemy", "pydantic", "argon2", "boto3", "botocore", "pg8000", "cryptography", "redis", "jwt"]

# Emulates the Lambda bundle: a finder in front of every other refuses the modules it lacks.
_PRELUDE = """
import json, os, resource, sys, time
class _BundleLacks:
    names = frozenset(json.loads(os.environ.get("BENCH_BLOCKED", "[]")))
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in cls.names:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda bundle)", name=name)
        return None
sys.meta_path.insert(0, _BundleLacks)
extra = {}
started = time.perf_counter()
"""

# ru_maxrss survives execve on Linux (a child would report its parent's peak), so the child reads
# its own high-water mark from /proc, falling back to ru_maxrss elsewhere.
_EPILOGUE = """
done = globals().get("done") or time.perf_counter()
heavy = [m for m in json.loads(os.environ["BENCH_HEAVY"]) if m in sys.modules]
try:
    with open("/proc/self/status") as status_file:
        peak_kb = next(int(ln.split()[1]) for ln in status_file if ln.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCH-RESULT " + json.dumps({"seconds": done - started, "first_import_seconds": imported - started,
      "status": status, "heavy_modules": heavy, "peak_rss_mb": peak_kb / 1024, **extra}))
"""

API_CHILD = (
    _PRELUDE
    + """
import app
imported = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
status = app.app(event, None)["statusCode"]
"""
    + _EPILOGUE
)

# A SnapStart init (priming included), the snapshot hook, the restore hook, the first request, and
# then the same request warm.
RESTORED_CHILD = (
    _PRELUDE
    + """
import app
from chalicelib import lifecycle
imported = time.perf_counter()
lifecycle.before_snapshot()
restoring = time.perf_counter()
lifecycle.after_restore()
hooked = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
status = app.app(event, None)["statusCode"]
done = time.perf_counter()
warm = []
for _ in range(int(os.environ.get("BENCH_WARM_REQUESTS", "30"))):
    t = time.perf_counter()
    assert app.app(event, None)["statusCode"] == status
    warm.append(time.perf_counter() - t)
warm.sort()
extra = {"init_seconds": imported - started, "after_restore_seconds": hooked - restoring,
         "first_request_seconds": done - hooked, "warm_median_seconds": warm[len(warm) // 2]}
started = restoring
"""
    + _EPILOGUE
)

AUTHORIZER_CHILD = (
    _PRELUDE
    + """
from chalicelib.auth.authorizer import jwt_authorizer
imported = time.perf_counter()
result = jwt_authorizer(json.loads(os.environ["BENCH_TOKEN_EVENT"]), None)
status = result["context"]["auth"]
"""
    + _EPILOGUE
)

# A handler process that has served a bit of everything, argon2 included: its peak RSS.
HANDLER_MIX_CHILD = (
    _PRELUDE
    + """
import app
imported = time.perf_counter()
for event in json.loads(os.environ["BENCH_EVENTS"]):
    for _ in range(3):
        status = app.app(event, None)["statusCode"]
        assert status < 300, status
"""
    + _EPILOGUE
)


def bundle_lacks() -> list[str]:
    """Top-level modules installed here that the Lambda bundle does not have: everything outside
    requirements.txt's distributions, chalice (whose runtime Chalice packages) and the boto3 the
    runtime provides. `cryptography` (through moto) is the one that matters: PyJWT imports it when
    it can."""
    from importlib.metadata import packages_distributions

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    allowed = {"chalice", "boto3", "botocore", "s3transfer", "jmespath", "urllib3"}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name = re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0]
        if name and not name.startswith("#"):
            allowed.add(canonical(name))
    return sorted(
        top
        for top, dists in packages_distributions().items()
        if top not in sys.stdlib_module_names
        and not top.startswith("__")
        and not any(canonical(d) in allowed for d in dists)
    )


@contextlib.contextmanager
def bytecode_cache() -> Iterator[dict[str, str]]:
    """The environment that points children at this run's bytecode folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bench-bytecode-") as folder:
        yield {"PYTHONPYCACHEPREFIX": folder}


# Added to a child's environment for the one unmeasured run that writes the bytecode: an empty
# PYTHONDONTWRITEBYTECODE lets it write.
WRITES_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


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


def _median_ms(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs) * 1000, 1)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "median_ms": _median_ms(runs, "seconds"),
        "median_import_ms": _median_ms(runs, "first_import_seconds"),
        "median_process_wall_ms": _median_ms(runs, "process_wall_seconds"),
        "min_ms": round(min(r["seconds"] for r in runs) * 1000, 1),
        "max_ms": round(max(r["seconds"] for r in runs) * 1000, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "heavy_modules": runs[-1]["heavy_modules"],
        "status": runs[-1]["status"],
    }


def _restored_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first, warm = _median_ms(runs, "first_request_seconds"), _median_ms(runs, "warm_median_seconds")
    return {
        "runs": len(runs),
        "median_init_ms": _median_ms(runs, "init_seconds"),
        "median_after_restore_hook_ms": _median_ms(runs, "after_restore_seconds"),
        "median_first_request_ms": first,
        "median_warm_request_ms": warm,
        "first_over_warm": round(
            statistics.median(r["first_request_seconds"] / r["warm_median_seconds"] for r in runs), 2
        ),
        "median_process_wall_ms": _median_ms(runs, "process_wall_seconds"),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "status": runs[-1]["status"],
    }


def measure(
    *,
    list_event: dict[str, Any],
    token_event: dict[str, Any],
    runs: int = 7,
    services: dict[str, str] | None = None,
    flask_ref: Callable[[dict[str, str]], dict[str, Any]] | None = None,
    compiled: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The cold paths, `runs` fresh processes each, rotating (so that none always runs first on a
    quiet machine). `services` overrides DATABASE_URL / REDIS_URL (the modeled network);
    `flask_ref(extra_env)` runs one seed-stack cold child and returns its figures; `compiled`:
    the bytecode folder's environment (`bytecode_cache()`), filled by one unmeasured run of each."""
    blocked = bundle_lacks()
    env = environment.subprocess_env(
        BENCH_HEAVY=json.dumps(HEAVY),
        BENCH_EVENT=json.dumps(list_event),
        BENCH_TOKEN_EVENT=json.dumps(token_event),
        BENCH_BLOCKED=json.dumps(blocked),
        **(services or {}),
        **(compiled or {}),
    )
    env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    restored_env = {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    children: list[tuple[str, Callable[[dict[str, str]], dict[str, Any]]]] = [
        ("api", lambda extra: _run_child(API_CHILD, {**env, **extra})),
        ("authorizer", lambda extra: _run_child(AUTHORIZER_CHILD, {**env, **extra})),
        ("restored", lambda extra: _run_child(RESTORED_CHILD, {**restored_env, **extra})),
    ]
    if flask_ref is not None:
        seed = flask_ref
        children.insert(1, ("flask_ref", lambda extra: seed({**(compiled or {}), **extra})))
    if compiled:
        for _name, child in children:
            child(WRITES_BYTECODE)
    paths = [(name, functools.partial(child, {})) for name, child in children]
    done: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in paths}
    for run in range(runs):
        for name, child in paths[run % len(paths) :] + paths[: run % len(paths)]:
            done[name].append(child())
    api, authorizer, restored = done["api"], done["authorizer"], done["restored"]
    if any(r["status"] != 200 for r in api + restored) or any(r["status"] != "ok" for r in authorizer):
        raise RuntimeError(f"cold-start requests failed: {api[-1]} {authorizer[-1]} {restored[-1]}")
    result: dict[str, Any] = {
        "api": _summary(api),
        "authorizer": _summary(authorizer),
        "restored": _restored_summary(restored),
        "bundle_lacks": blocked,
    }
    result["authorizer_share_of_api"] = round(
        result["authorizer"]["median_ms"] / result["api"]["median_ms"], 3
    )
    if flask_ref is not None:
        result["flask_ref"] = _summary(done["flask_ref"])
        result["api_over_flask_ref"] = round(result["api"]["median_ms"] / result["flask_ref"]["median_ms"], 3)
    return result


def handler_peak_rss(events: list[dict[str, Any]]) -> dict[str, Any]:
    env = environment.subprocess_env(
        BENCH_HEAVY=json.dumps(HEAVY),
        BENCH_EVENTS=json.dumps(events),
        BENCH_BLOCKED=json.dumps(bundle_lacks()),
    )
    data = _run_child(HANDLER_MIX_CHILD, env)
    return {"peak_rss_mb": round(data["peak_rss_mb"], 1), "requests": 3 * len(events)}


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """`-X importtime` lines as (module, self us, cumulative us, depth); depth 1 is top level."""
    rows = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            rows.append(
                (match.group(4), int(match.group(1)), int(match.group(2)), (len(match.group(3)) + 1) // 2)
            )
    return rows


def by_package(rows: list[tuple[str, int, int, int]]) -> dict[str, float]:
    """Self import time summed by top-level package (ms), biggest first: where an import's time goes,
    whoever imported it."""
    totals: dict[str, int] = {}
    for module, self_us, _cumulative, _depth in rows:
        top = module.partition(".")[0]
        totals[top] = totals.get(top, 0) + self_us
    return {name: round(us / 1000, 1) for name, us in sorted(totals.items(), key=lambda item: -item[1])}


def importtime(module: str, runs: int = 5, compiled: dict[str, str] | None = None) -> dict[str, Any]:
    """`python -X importtime -c "import <module>"`: the module's cumulative time (median of runs)
    and the biggest top-level contributors of the last run."""
    env = environment.subprocess_env(BENCH_BLOCKED=json.dumps(bundle_lacks()), **(compiled or {}))
    own, everything, last = [], [], []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        rows = parse_importtime(result.stderr)
        if result.returncode != 0 or not rows:
            raise RuntimeError(f"importtime of {module} failed: {result.stderr[-2000:]}")
        top = [r for r in rows if r[3] == 1]
        own.append(next(r[2] for r in top if r[0] == module))
        everything.append(sum(r[2] for r in top))
        last = rows
    nested = sorted(((r[0], r[2]) for r in last if r[3] in (2, 3)), key=lambda item: -item[1])
    return {
        "module": module,
        "runs": runs,
        "median_ms": round(statistics.median(own) / 1000, 1),
        "median_with_interpreter_startup_imports_ms": round(statistics.median(everything) / 1000, 1),
        "biggest": [{"module": name, "cumulative_ms": round(us / 1000, 1)} for name, us in nested[:12]],
    }


def _median_profile(runs: list[list[tuple[str, int, int, int]]]) -> dict[str, Any]:
    totals = [sum(r[1] for r in rows) for rows in runs]
    packages: dict[str, list[float]] = {}
    for rows in runs:
        for name, ms in by_package(rows).items():
            packages.setdefault(name, []).append(ms)
    medians = {
        name: round(statistics.median(values + [0.0] * (len(runs) - len(values))), 1)
        for name, values in packages.items()
    }
    top = sorted(medians.items(), key=lambda item: -item[1])[:15]
    return {
        "runs": len(runs),
        "total_ms": round(statistics.median(totals) / 1000, 1),
        "by_package_ms": dict(top),
    }


def cold_path_imports(
    *,
    list_event: dict[str, Any],
    services: dict[str, str] | None = None,
    flask_ref: tuple[Any, Any, str, dict[str, str]] | None = None,
    runs: int = 3,
    compiled: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every import of a cold API path (the whole child: init and first request, under the bundle's
    limits), and of the seed stack's cold child, by package: self time per package, the median of
    `runs` runs under -X importtime, the two alternating."""
    env = environment.subprocess_env(
        BENCH_HEAVY=json.dumps(HEAVY),
        BENCH_EVENT=json.dumps(list_event),
        BENCH_BLOCKED=json.dumps(bundle_lacks()),
        **(services or {}),
        **(compiled or {}),
    )
    env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    ours_runs, seed_runs = [], []
    for _ in range(runs):
        ours = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", API_CHILD],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if ours.returncode != 0:
            raise RuntimeError(f"importtime of the API cold path failed: {ours.stderr[-2000:]}")
        ours_runs.append(parse_importtime(ours.stderr))
        if flask_ref is not None:
            python, anchor, code, seed_env = flask_ref
            theirs = subprocess.run(
                [str(python), "-X", "importtime", "-c", code, "request"],
                cwd=anchor,
                env={**seed_env, **(compiled or {})},
                capture_output=True,
                text=True,
            )
            if theirs.returncode != 0:
                raise RuntimeError(
                    f"importtime of the seed stack's cold path failed: {theirs.stderr[-2000:]}"
                )
            seed_runs.append(parse_importtime(theirs.stderr))
    result: dict[str, Any] = {"ours": _median_profile(ours_runs)}
    if seed_runs:
        result["flask_ref"] = _median_profile(seed_runs)
    return result


_COLLECTED = re.compile(r"Collected : (\d+)")


def _instructions(
    command: list[str], cwd: Path | str, env: dict[str, str], expect: str = "BENCH-RESULT"
) -> int:
    """Instructions the command executed (callgrind's total); `expect`: a word its output must hold."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    match = _COLLECTED.search(result.stderr)
    if result.returncode != 0 or match is None or expect not in result.stdout:
        raise RuntimeError(f"callgrind of a cold path failed ({result.returncode}): {result.stderr[-2000:]}")
    return int(match.group(1))


def instructions(
    *,
    list_event: dict[str, Any],
    token_event: dict[str, Any],
    flask_ref: tuple[Any, Any, str, dict[str, str]] | None = None,
    compiled: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The cold paths counted in instructions (valgrind's callgrind, one run each: the count is the
    same from run to run and whatever else the machine is doing, unlike the clock). The whole
    process: interpreter start, imports, init and the first request, ours under the bundle's limits
    beside the seed stack's child. None where valgrind is not installed."""
    if shutil.which("valgrind") is None:
        return None
    env = environment.subprocess_env(
        BENCH_HEAVY=json.dumps(HEAVY),
        BENCH_EVENT=json.dumps(list_event),
        BENCH_TOKEN_EVENT=json.dumps(token_event),
        BENCH_BLOCKED=json.dumps(bundle_lacks()),
        **(compiled or {}),
    )
    env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    counts = {
        "api": _instructions([sys.executable, "-c", API_CHILD], ROOT, env),
        "authorizer": _instructions([sys.executable, "-c", AUTHORIZER_CHILD], ROOT, env),
        "interpreter": _instructions([sys.executable, "-c", "print('BENCH-RESULT')"], ROOT, env),
    }
    result: dict[str, Any] = {"millions": {name: round(n / 1e6, 1) for name, n in counts.items()}}
    if flask_ref is not None:
        python, anchor, code, seed_env = flask_ref
        seed_command = [str(python), "-c", code, "request"]
        seed = _instructions(seed_command, anchor, {**seed_env, **(compiled or {})}, expect="VmHWM")
        result["millions"]["flask_ref"] = round(seed / 1e6, 1)
        result["api_over_flask_ref"] = round(counts["api"] / seed, 3)
    result["authorizer_share_of_api"] = round(counts["authorizer"] / counts["api"], 3)
    return result
