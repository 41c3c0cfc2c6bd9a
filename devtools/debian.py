"""A program from Debian's packages, installed when it is missing (`make test-pooled`'s PgBouncer,
`make browser-test`'s Chromium): with apt-get, as root; anyone else is told what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def ensure_binary(binary: Path, package: str, variable: str, *, recommends: bool = True) -> Path:
    """`binary`, installed from the Debian package `package` when missing. `variable` is the
    environment variable that points at another binary (named in the message when it cannot be
    installed); `recommends=False` leaves the package's recommended packages out."""
    if binary.exists():
        return binary
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            f"{binary} is missing: install Debian's `{package}` package "
            f"(sudo apt-get install {package}), or set {variable} to a {package} binary"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing Debian's {package} (apt-get)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *([] if recommends else ["--no-install-recommends"]), package],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    if not binary.exists():
        raise SystemExit(f"apt-get installed {package}, yet {binary} is missing")
    return binary
