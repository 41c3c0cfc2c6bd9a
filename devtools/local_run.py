"""Start the local run command as CI and the end-to-end tests do, and stop it again: `python -m
devtools.run --scratch` (throwaway database, Redis, signing key and demo users; nothing of .devdata
but the embedded PostgreSQL server is touched) on a free port, in a session of its own.

    with LocalRun(extra_env={"CORS_ALLOW_ORIGIN": origin}) as run:
        run.base_url, run.password, run.log_text(), run.mail_directory

Every wait has a deadline. Stopping sends SIGINT to the whole session (the run command stops its
server and the services it started), then SIGTERM and SIGKILL to whatever is still there, so
nothing outlives it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib import error, request

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(base_url: str) -> bool:
    try:
        with request.urlopen(base_url + "/api/health", timeout=5) as resp:
            return resp.status == 200
    except (error.URLError, OSError):
        return False


def default_sigint() -> None:
    """In a child (`preexec_fn`): SIGINT back to its default. A command started in the background
    by a non-interactive shell inherits SIGINT *ignored*, and an ignored signal stays ignored
    across exec: Python then never turns it into KeyboardInterrupt, and a shell's `trap` cannot
    undo it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def restore_default_sigint() -> bool:
    """In this process: SIGINT as Python sets it up in a foreground process (KeyboardInterrupt)
    when it was ignored on entry, so that every process started from here on begins with the
    default disposition. True when it had been ignored."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True


def session_members(sid: int) -> list[int]:
    """Every live process of the session `sid` (the run command and all it started)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getsid(pid) == sid and _state(pid) != "Z":
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(process: subprocess.Popen, *, grace: float = 45.0, first: int = signal.SIGINT) -> list[int]:
    """`first` (SIGINT) to the session, then SIGTERM, then SIGKILL; returns the pids that needed SIGKILL."""
    sid = process.pid
    for sig, wait in ((first, grace), (signal.SIGTERM, 10.0)):
        _signal_all(session_members(sid) or [sid], sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            if not session_members(sid):
                # It may have exited since the poll above: a zombie is no member, but its exit
                # status is only ours once it is reaped.
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                return []
            time.sleep(0.2)
    leftovers = session_members(sid)
    _signal_all(leftovers, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    return leftovers


class LocalRun:
    """`python -m devtools.run --scratch` on a free port (or `command` instead, e.g. `make run`)."""

    def __init__(
        self,
        *,
        extra_env: dict[str, str] | None = None,
        command: list[str] | None = None,
        startup_timeout: float = 300.0,
        interactions: int = 500,
        preexec_fn: Callable[[], None] = default_sigint,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="local-run-"))
        self.login_file = self.workdir / "demo-login.txt"
        self.log_file = self.workdir / "run.log"
        # Where the run writes invitations' messages (.eml files, read as the invitee's mailbox);
        # None for another `command`, whose mail goes where that command sends it.
        self.mail_directory: Path | None = None if command else self.workdir / "mail"
        self.args = [
            "--scratch",
            "--login-file",
            str(self.login_file),
            "--interactions",
            str(interactions),
            "--mail-directory",
            str(self.workdir / "mail"),
            *(extra_args or []),
        ]
        self.command = command or [sys.executable, "-m", "devtools.run", *self.args]
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.startup_timeout = startup_timeout
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None
        self.ready_after = 0.0
        self.killed: list[int] = []
        self.output: str | None = None  # the whole log, once stopped

    def start(self) -> LocalRun:
        started = time.monotonic()
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )
        deadline = started + self.startup_timeout
        while not healthy(self.base_url):
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"the local run exited with {self.process.returncode} before answering:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"no healthy answer from {self.base_url} within {self.startup_timeout:.0f} s:\n"
                    f"{self.tail()}"
                )
            time.sleep(0.3)
        self.ready_after = time.monotonic() - started
        return self

    @property
    def password(self) -> str:
        return self.login_file.read_text().strip()

    def log_text(self) -> str:
        if self.output is not None:
            return self.output
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def invitation_token(self, address: str, *, timeout: float = 30.0) -> str:
        """The token of the newest invitation to `address` the console showed (devtools/mailbox.py),
        read as a user of the local run would: from the accept link printed under "Mail to ..."."""
        deadline = time.monotonic() + timeout
        while True:
            token = None
            lines = self.log_text().splitlines()
            for index, line in enumerate(lines):
                if line.startswith("Mail to ") and address.lower() in line.lower():
                    for following in lines[index + 1 : index + 4]:
                        if "accept link:" in following and "token=" in following:
                            token = following.split("token=", 1)[1].split("&")[0].strip()
            if token:
                return token
            if time.monotonic() > deadline:
                raise RuntimeError(f"no invitation to {address} on the console:\n{self.tail()}")
            time.sleep(0.3)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no output)"

    def stop(self, first: int = signal.SIGINT) -> int | None:
        """Stop everything it started and remove its files (the log is kept in `output`); the run
        command's exit status (None if it had to be killed)."""
        if self.process is None:
            return None
        if self.output is None:
            self.killed = stop_session(self.process, first=first)
            self.output = self.log_text()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return None if self.killed else self.process.returncode

    def __enter__(self) -> LocalRun:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
