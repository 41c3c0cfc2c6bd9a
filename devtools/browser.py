"""Debian's Chromium for the browser test (tests/browser, `make browser-test`): installed when it is
missing, launched headless with the flags this kind of machine needs, driven by Playwright.

    python -m devtools.browser install     # apt-get install chromium, as root, when missing

Playwright's own browser downloads (`playwright install`) cannot be used here; the Python package
drives the system's Chromium through `executable_path`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Headless as root, no GPU, and none of Chromium's own network traffic (a closed network refuses
# it connection by connection, which slows every start).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> Path:
    """The Chromium binary; installed from Debian's packages when missing (needs root and apt-get)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            f"{CHROMIUM} is missing: install Debian's `chromium` package "
            "(sudo apt-get install chromium), or set CHROMIUM to a Chromium binary"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing Debian's chromium (apt-get)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    if not CHROMIUM.exists():
        raise SystemExit(f"apt-get installed chromium, yet {CHROMIUM} is missing")
    return CHROMIUM


def launch(playwright: Any) -> tuple[Any, Path]:
    """(a browser context with a fresh, empty profile, that profile's directory)."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS
    )
    return context, profile


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"chromium: {ensure_chromium()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
