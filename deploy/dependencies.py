"""The Lambda bundle's third-party packages: requirements.txt installed for the runtime of
deploy/runtime.py (python3.12, manylinux x86_64), whatever Python runs this.

    site_packages(env)  -> build/lambda-deps/<digest>/   (reused while requirements.txt and the runtime stay)

deploy/package.py hands that directory to Chalice as the project's `vendor/` (Chalice copies a
vendor directory's contents to the top of deployment.zip) and gives Chalice no requirements.txt,
so Chalice's own pip step, which would pick wheels for the packaging interpreter, never runs.
pip gets the index from the environment: PyPI, or `PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheelhouse>`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from deploy import runtime

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "lambda-deps"
PIP_TIMEOUT_S = 600


class DependencyError(RuntimeError):
    pass


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def digest(requirements: Path, target: runtime.Runtime = runtime.LAMBDA) -> str:
    """What the installed set depends on: the pins and the runtime's tags."""
    h = hashlib.sha256(requirements.read_bytes())
    h.update(" ".join(target.pip_arguments()).encode())
    return h.hexdigest()[:16]


def site_packages(
    env: dict[str, str],
    *,
    requirements: Path | None = None,
    cache: Path | None = None,
    target: runtime.Runtime = runtime.LAMBDA,
) -> Path:
    """requirements.txt (or `requirements`) installed for the Lambda runtime `target` (cached by
    digest); raises DependencyError."""
    requirements = requirements or ROOT / "requirements.txt"
    cache = cache or CACHE
    installed = cache / digest(requirements, target)
    if installed.is_dir():
        return installed
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{installed.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(partial),
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        *target.pip_arguments(),
        "-r",
        str(requirements),
    ]
    try:
        result = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PIP_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise DependencyError(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise DependencyError(
            f"pip could not install {requirements.name} for {target.name} ({target.abi}, "
            f"manylinux {runtime.ARCHITECTURE}):\n{result.stdout}{result.stderr}"
        )
    # Console scripts (cffi-gen-src) are of no use in a Lambda bundle.
    shutil.rmtree(partial / "bin", ignore_errors=True)
    try:
        partial.rename(installed)  # only a complete installation gets the digest's name
    except OSError:
        if not installed.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # another packaging run finished first
    return installed


def closure_problems(metadata: Iterable[str], target: runtime.Runtime = runtime.LAMBDA) -> list[str]:
    """Dependencies that the bundled distributions require on the runtime (their Requires-Dist,
    markers evaluated for python3.12 on Linux x86_64) but that are missing or at a version outside
    the requirement. `metadata`: the text of every bundled METADATA file."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    parsed = []
    for text in metadata:
        fields = _fields(text)
        parsed.append(
            (fields.get("Name", ["?"])[0], fields.get("Version", ["?"])[0], fields.get("Requires-Dist", []))
        )
    present = {canonicalize_name(name): version for name, version, _ in parsed}
    found = []
    for name, version, requires in parsed:
        for line in requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement as exc:
                found.append(f"{name} {version}: unreadable requirement {line!r} ({exc})")
                continue
            # Extras the bundle never asks for are not needed.
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**target.marker_environment, "extra": ""}
            ):
                continue
            have = present.get(canonicalize_name(requirement.name))
            if have is None:
                found.append(
                    f"{name} {version} needs {requirement} on {target.name}: not in the bundle "
                    "(pin it in requirements.txt)"
                )
            elif not requirement.specifier.contains(have, prereleases=True):
                found.append(f"{name} {version} needs {requirement}; the bundle has {have}")
    return found


def _fields(metadata: str) -> dict[str, list[str]]:
    """The header fields of a METADATA file (RFC 822 style; the body after the blank line is the
    description)."""
    fields: dict[str, list[str]] = {}
    for line in metadata.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t")):
            fields.setdefault(key.strip(), []).append(value.strip())
    return fields
