"""What the benchmark's cold-start children and tables rest on, without timing: the children cannot
import what the Lambda bundle lacks (PyJWT then verifies HS256 without `cryptography`), the import
profile is read and summed by package, blocks of requests are shared out evenly, and the performance page's
table is read back for the comparison with the last published run; instruction counts (callgrind)
repeat from run to run."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec

import pytest

from bench import coldstart, report
from bench.__main__ import _split

CHILD = (
    coldstart._PRELUDE
    + """
import jwt
token = jwt.encode({"sub": "1"}, "k" * 40, algorithm="HS256")
try:
    import cryptography
    blocked = False
except ModuleNotFoundError:
    blocked = True
print(json.dumps({"blocked": blocked, "has_crypto": jwt.algorithms.has_crypto,
                  "sub": jwt.decode(token, "k" * 40, algorithms=["HS256"])["sub"]}))
"""
)


def test_the_bundle_lacks_what_requirements_txt_does_not_install():
    lacks = set(coldstart.bundle_lacks())

    assert not lacks & {
        "sqlalchemy",
        "pg8000",
        "jwt",
        "redis",
        "pydantic",
        "argon2",
        "chalice",
        "boto3",
        "tzdata",
    }
    assert {"pytest", "moto"} <= lacks
    if find_spec("cryptography") is not None:
        assert "cryptography" in lacks


def test_a_child_cannot_import_a_blocked_module_and_pyjwt_still_verifies_hs256():
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env={"BENCH_BLOCKED": json.dumps(["cryptography"]), "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"blocked": True, "has_crypto": False, "sub": "1"}


SAMPLE = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _io
import time:       300 |        300 |     sqlalchemy.util
import time:      2000 |       2300 |   sqlalchemy
import time:       400 |        400 |     redis.client
import time:       600 |       1000 |   redis
import time:       200 |       3500 | app
"""


def test_import_profiles_are_summed_by_package():
    rows = coldstart.parse_importtime(SAMPLE)

    assert ("sqlalchemy", 2000, 2300, 2) in rows and ("app", 200, 3500, 1) in rows
    assert coldstart.by_package(rows) == {"sqlalchemy": 2.3, "redis": 1.0, "app": 0.2, "_io": 0.1}


@pytest.mark.parametrize("total, parts", [(100, 10), (20, 10), (7, 3), (3, 5)])
def test_requests_are_shared_out_evenly_over_the_blocks(total, parts):
    shares = _split(total, parts)

    assert sum(shares) == total and len(shares) == parts
    assert max(shares) - min(shares) <= 1


def test_the_performance_pages_loopback_table_is_read_back(tmp_path):
    readme = tmp_path / "performance.md"
    readme.write_text(
        "# Performance\n\ntext\n\n| scenario | handler median ms | p95 |\n|---|---:|---:|\n"
        "| login | 170.24 | 180 |\n| get by id | 2.66 | 3 |\n\n| scenario | handler median ms |\n"
        "|---|---:|\n| login | 1.0 |\n\n## Design\n\n| scenario | handler median ms |\n| me | 9 |\n"
    )

    assert report.readme_baseline(readme) == {"login": 170.24, "get by id": 2.66}
    assert report.readme_baseline(tmp_path / "missing.md") == {}


def test_a_scenario_named_after_the_data_matches_its_readme_row_by_kind():
    baseline = {"filter start_date=2026-12-27": 5.8, "filter title=product": 6.4, "get by id": 2.7}

    matched = report.match_baseline(
        baseline, ["filter start_date=2027-01-02", "filter title=report", "get by id", "filter title=product"]
    )

    assert matched == {"filter start_date=2027-01-02": 5.8, "get by id": 2.7, "filter title=product": 6.4}


def test_the_import_profile_of_several_runs_is_the_median_per_package():
    other = SAMPLE.replace("2000 |       2300 |   sqlalchemy", "4000 |       4300 |   sqlalchemy")
    runs = [coldstart.parse_importtime(text) for text in (SAMPLE, other, other)]

    profile = coldstart._median_profile(runs)

    assert profile["runs"] == 3
    assert profile["by_package_ms"]["sqlalchemy"] == 4.3
    assert profile["total_ms"] == 5.6


def test_children_read_their_bytecode_from_the_runs_cache_folder(tmp_path):
    """As the bundle carries its bytecode, the measured children compile nothing: one unmeasured
    run writes into the run's cache folder, later ones read from it; nothing beside the sources."""
    (tmp_path / "mod.py").write_text("X = 1\n")
    code = "import mod, os, sys; print(os.path.exists(mod.__cached__), mod.__cached__)"

    def child(env):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True
        )
        exists, cached = out.stdout.split()
        return exists == "True", cached

    with coldstart.bytecode_cache() as compiled:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path),
            "PYTHONDONTWRITEBYTECODE": "1",
            **compiled,
        }
        assert child(env)[0] is False
        child({**env, **coldstart.WRITES_BYTECODE})
        exists, cached = child(env)
        assert exists and cached.startswith(compiled["PYTHONPYCACHEPREFIX"])
    assert not list(tmp_path.glob("__pycache__"))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_repeat_and_grow_with_the_work():
    count = functools.partial(coldstart._instructions, cwd=coldstart.ROOT, env=dict(os.environ))
    small = [sys.executable, "-c", "print('BENCH-RESULT')"]
    more = [sys.executable, "-c", "import json, decimal, email.message; print('BENCH-RESULT')"]
    first, again, bigger = count(small), count(small), count(more)
    assert abs(first - again) / first < 0.01
    assert bigger > first * 1.05


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_an_instruction_count_of_a_failing_child_is_an_error():
    with pytest.raises(RuntimeError, match="callgrind"):
        coldstart._instructions(
            [sys.executable, "-c", "raise SystemExit(3)"], coldstart.ROOT, dict(os.environ)
        )
