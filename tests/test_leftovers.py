"""The session-end check (tests/leftovers.py): a suite that leaves a process or a temp folder
behind fails, names them, and stops and removes them; a suite that cleans up passes. Run on small
suites of their own, in a pytest of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LEAKY = """
import subprocess
import tempfile


def test_forgets_a_process_and_a_folder():
    subprocess.Popen(["sleep", "301"], start_new_session=True)
    tempfile.mkdtemp(prefix="forgotten-")
"""

TIDY = """
import shutil
import subprocess
import tempfile


def test_cleans_up():
    process = subprocess.Popen(["sleep", "301"])
    process.terminate()
    process.wait()
    shutil.rmtree(tempfile.mkdtemp(prefix="forgotten-"))
"""


def suite(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.leftovers",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sleepers() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() == b"sleep\x00301\x00":
                    found.append(entry)
        except OSError:
            continue
    return found


def test_a_suite_that_leaves_a_process_and_a_temp_folder_fails_naming_them(tmp_path):
    result = suite(tmp_path, LEAKY)

    assert result.returncode == 1, result.stdout
    assert "1 passed" in result.stdout  # the test passed; the run did not
    report = result.stdout.split("left behind by the suite")[1]
    assert "sleep 301" in report
    assert "forgotten-" in report
    assert sleepers() == []  # and stopped


def test_a_process_that_names_the_session_folder_is_found_though_its_environment_does_not():
    """redis-server rewrites its process title over its environment: its socket path gives it away."""
    import tempfile

    from tests import leftovers

    tmp = Path(tempfile.mkdtemp(prefix="marked-"))
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(302)", f"{tmp}/redis.socket"], env={}
    )
    try:
        # Until the child has exec'd, its command line is still this process's (the fork's copy).
        deadline = time.monotonic() + 10
        while f"{tmp}/redis.socket" not in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.01)
        assert [pid for pid, _ in leftovers.marked_processes(tmp)] == [process.pid]
    finally:
        process.kill()
        process.wait()
        tmp.rmdir()


def test_a_suite_that_cleans_up_passes(tmp_path):
    result = suite(tmp_path, TIDY)

    assert result.returncode == 0, result.stdout
    assert "left behind" not in result.stdout
