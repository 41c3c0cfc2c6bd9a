"""The generated clients, checked as a frontend developer uses them (`make clients`, a step of CI).

    python -m devtools.clients [--startup-timeout 300]

Against the local run on scratch data (devtools/local_run.py, the demo admin), from the document it
serves at /api/openapi.json, with each generator's default settings. The flows get the API's address,
the demo login and the folder the run writes invitations' messages to (API_MAIL_DIRECTORY: the
invitee's mailbox, where an invitation's token is read as its holder reads it):

1. `redocly lint` with clients/redocly.yaml: no error and no warning;
2. TypeScript: `openapi-typescript` writes clients/ts/generated/api.d.ts, `tsc` (strict, clients/ts/
   tsconfig.json) compiles the flow clients/ts/flow.ts that calls the API through `openapi-fetch`,
   and node runs it, checking every response against the document with Ajv (clients/ts/check.ts);
3. Python: `openapi-python-client generate` writes the client under .devdata/clients/python, `mypy
   --strict` checks clients/python/flow.py against it, and the flow runs, every response checked
   against the document (clients/python/document_check.py).

The node packages come from clients/package-lock.json (`npm ci`, which the make target runs when the
lock file is newer than its install). Generated files are never committed: they are made afresh
from the served document on every run. Everything started is stopped, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib import request

from devtools.local_run import LocalRun

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
OUT = ROOT / ".devdata" / "clients"
VENV_BIN = Path(sys.executable).parent
# Neither telemetry nor update checks: CI reaches the package registries only.
NODE_ENV = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_UPDATE_NOTIFIER": "1"}


def run(label: str, command: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
    started = time.monotonic()
    print(f"clients: {label}", flush=True)
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"clients: {label} failed (exit status {result.returncode})")
    print(f"clients: {label}: ok in {time.monotonic() - started:.1f} s", flush=True)


def lint(document: Path) -> None:
    """redocly lint; any warning fails like an error (the config turns off, with reasons, what does
    not apply)."""
    command = [
        str(NODE_BIN / "redocly"),
        "lint",
        "--config",
        str(CLIENTS / "redocly.yaml"),
        "--format",
        "json",
        str(document),
    ]
    result = subprocess.run(
        command, cwd=CLIENTS, env={**os.environ, **NODE_ENV}, capture_output=True, text=True, check=False
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"clients: redocly lint gave no report:\n{result.stdout}\n{result.stderr}") from None
    totals = report["totals"]
    for problem in report.get("problems", []):
        where = ", ".join(location.get("pointer", "") for location in problem.get("location", []))
        print(f"  {problem.get('severity')} {problem.get('ruleId')}: {problem.get('message')} ({where})")
    print(f"clients: redocly lint: {totals['errors']} errors, {totals['warnings']} warnings")
    if totals["errors"] or totals["warnings"]:
        raise SystemExit("clients: redocly lint found problems")


def typescript(document: Path, env: dict[str, str]) -> None:
    generated = CLIENTS / "ts" / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    run(
        "openapi-typescript",
        [str(NODE_BIN / "openapi-typescript"), str(document), "-o", str(generated / "api.d.ts")],
        env=NODE_ENV,
    )
    shutil.rmtree(CLIENTS / "ts" / "build", ignore_errors=True)
    run("tsc --strict (clients/ts)", [str(NODE_BIN / "tsc"), "-p", str(CLIENTS / "ts")])
    run("the TypeScript flow", ["node", str(CLIENTS / "ts" / "build" / "flow.js")], env=env)


def python(document: Path, env: dict[str, str]) -> None:
    generated = OUT / "python"
    shutil.rmtree(generated, ignore_errors=True)
    # The generator formats its output with ruff (the project's pinned one) found on PATH.
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    run(
        "openapi-python-client",
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(generated),
        ],
        env={"PATH": path},
    )
    search = os.pathsep.join([str(CLIENTS / "python"), str(generated)])
    flow = str(CLIENTS / "python" / "flow.py")
    run(
        "mypy --strict (clients/python)",
        [
            str(VENV_BIN / "mypy"),
            "--strict",
            "--config-file",
            str(CLIENTS / "python" / "mypy.ini"),
            "--cache-dir",
            str(OUT / "mypy-cache"),
            flow,
        ],
        env={"MYPYPATH": search},
    )
    run("the Python flow", [sys.executable, flow], env={**env, "PYTHONPATH": search})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--startup-timeout", type=float, default=300.0, help="seconds for the local run to answer"
    )
    args = parser.parse_args(argv)
    if not (NODE_BIN / "tsc").exists():
        raise SystemExit(
            "clients: the node packages are not installed: `make clients` runs `npm ci` in clients/"
        )
    # A CI timeout's SIGTERM must still stop the local run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    local = LocalRun(startup_timeout=args.startup_timeout, interactions=20)
    try:
        local.start()
        print(
            f"clients: the local run answered on {local.base_url} after {local.ready_after:.1f} s", flush=True
        )
        document = OUT / "openapi.json"
        with request.urlopen(f"{local.base_url}/api/openapi.json", timeout=30) as answer:
            document.write_bytes(answer.read())
        lint(document)
        env = {
            "API_BASE_URL": local.base_url,
            "API_USERNAME": "demo",
            "API_PASSWORD": local.password,
            "API_MAIL_DIRECTORY": str(local.mail_directory),
        }
        typescript(document, env)
        python(document, env)
    finally:
        status = local.stop()
        if local.killed or status not in (0, None):
            print(f"clients: the local run stopped badly ({status}, killed {local.killed}):\n{local.tail()}")
    print(f"clients: every check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
