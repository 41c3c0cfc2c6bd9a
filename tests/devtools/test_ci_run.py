"""`.ci/run`: its steps in order, and each step's time printed at the end — also when a step fails,
which stops the run with that step's status. Run here against stand-ins for the real steps."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = [
    "lint and types",
    "make test",
    "pooled tests",
    "fuzzer",
    "generated clients",
    "browser test",
    "smoke test",
    "smoke test through the pooler",
]


def checkout(tmp_path: Path, *, failing: str | None = None) -> Path:
    """A copy of .ci/run beside stand-ins that log their name and exit 0 (`failing` exits 3)."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    log = tmp_path / "steps.log"

    def recipe(name: str) -> str:
        return f"\t@echo '{name}' >> {log}" + ("; exit 3" if name == failing else "")

    (tmp_path / "Makefile").write_text(
        "lint:\n" + recipe("lint") + "\n"
        "typecheck:\n" + recipe("typecheck") + "\n"
        "test:\n" + recipe("test") + "\n"
        "test-pooled:\n" + recipe("test-pooled") + "\n"
        "clients:\n" + recipe("clients") + "\n"
        "browser-test:\n" + recipe("browser-test") + "\n"
    )
    for path, name in (("scripts/fuzz.sh", "fuzz"), (".venv/bin/python", "smoke")):
        stand_in = tmp_path / path
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text(f"#!/bin/sh\necho '{name}' >> {log}\n" + ("exit 3\n" if name == failing else ""))
        stand_in.chmod(0o755)
    return tmp_path


def ci_run(root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["bash", str(root / ".ci" / "run")],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def timings(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.split(":")[0] in STEPS]


def test_every_step_runs_in_order_and_its_time_is_printed(tmp_path):
    root = checkout(tmp_path)
    result = ci_run(root)
    assert result.returncode == 0, result.stderr
    assert (root / "steps.log").read_text().split() == [
        "lint",
        "typecheck",
        "test",
        "test-pooled",
        "fuzz",
        "clients",
        "browser-test",
        "smoke",
        "smoke",
    ]
    lines = timings(result.stdout)
    assert [line.split(":")[0] for line in lines] == STEPS
    assert all(line.endswith(" s") for line in lines)


def test_a_failing_step_stops_the_run_and_the_timings_are_still_printed(tmp_path):
    root = checkout(tmp_path, failing="fuzz")
    result = ci_run(root)
    assert result.returncode == 3
    assert (root / "steps.log").read_text().split() == ["lint", "typecheck", "test", "test-pooled", "fuzz"]
    lines = timings(result.stdout)
    assert [line.split(":")[0] for line in lines] == ["lint and types", "make test", "pooled tests", "fuzzer"]
    assert lines[-1].endswith("s (failed, exit status 3)")
