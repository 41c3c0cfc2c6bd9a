"""Download the Lambda runtime's wheels for requirements.txt into a directory, so that
`make package PACKAGE_ARGS="--wheelhouse DIR"` works without an index (`make wheelhouse`).

The wheels are those deploy/dependencies.py installs: for deploy/runtime.py's runtime (python3.12
on Amazon Linux 2023, glibc 2.34, x86_64), so cp312 or abi3 wheels tagged manylinux2014 up to
manylinux_2_34, or pure-Python ones; newer glibc tags would not load there. Only the pins of
requirements.txt (`--no-deps`: it pins every dependency), whatever Python runs this.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import runtime  # noqa: E402

DEFAULT = ROOT / ".devdata" / "wheelhouse"


def pip_command(target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        *runtime.pip_arguments(),
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        str(ROOT / "requirements.txt"),
        "-d",
        str(target),
    ]


def build(target: Path = DEFAULT, *, timeout: float = 600) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(pip_command(target), check=True, stdin=subprocess.DEVNULL, timeout=timeout)
    return target


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    print(
        f"{len(list(built.glob('*.whl')))} wheels for {runtime.RUNTIME} ({runtime.ABI}, manylinux "
        f"{runtime.ARCHITECTURE}) in {built}"
    )
