"""Download the Lambda runtime's Linux wheels for requirements.txt into a directory, so that
`make package PACKAGE_ARGS="--wheelhouse DIR"` works without an index (`make wheelhouse`).

The API runs on Lambda's python3.11 runtime (Amazon Linux 2, glibc 2.26): wheels tagged
manylinux2014 (glibc 2.17) or manylinux_2_26 fit, newer ones would not load there.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / ".devdata" / "wheelhouse"
PIP_ARGS = ["download", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
            "--platform", "manylinux_2_26_x86_64", "--implementation", "cp", "--python-version", "3.11"]


def build(target: Path = DEFAULT, *, timeout: float = 600) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", *PIP_ARGS, "--quiet", "--disable-pip-version-check",
                    "-r", str(ROOT / "requirements.txt"), "-d", str(target)],
                   check=True, stdin=subprocess.DEVNULL, timeout=timeout)
    return target


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    print(f"{len(list(built.glob('*.whl')))} wheels in {built}")
