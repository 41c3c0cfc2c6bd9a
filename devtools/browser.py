"""Debian's Chromium for the browser test (tests/browser, `make browser-test`): installed when it is
missing, launched headless with the flags this kind of machine needs, driven by Playwright.

    python -m devtools.browser install     # apt-get install chromium, as root, when missing

Playwright's own browser downloads (`playwright install`) cannot be used here; the Python package
drives the system's Chromium through `executable_path`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.debian import ensure_binary

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
    return ensure_binary(CHROMIUM, "chromium", "CHROMIUM")


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
