"""Bytecode for the bundle, compiled by the runtime's own interpreter.

Lambda unpacks the bundle into a read-only /var/task, so a module without a `.pyc` beside it is
compiled again on every cold start that imports it: measured here, `import app` takes 2.7 s from
sources alone against 0.85 s with bytecode. Bytecode is specific to one Python version, so only a
`python3.12` (the runtime's version) can write it; packaging asks `LAMBDA_PYTHON`, then a
`python3.12` on PATH that runs (pyenv's shim is on PATH but refuses to run unless its version is
selected), then pyenv's installed 3.12 (`pyenv prefix 3.12`), and without one ships sources only
(and says so). SnapStart makes the
compile an init cost either way; a stage with SnapStart off pays it on every cold start.

The files are *unchecked-hash* `.pyc` (PEP 552): the interpreter loads them without comparing
them with their sources' modification times, which a zip keeps only to two seconds and Lambda does
not promise to keep at all. Their sources are in the same bundle, built in the same step, so
they cannot differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from deploy import runtime

CACHE_TAG = runtime.LAMBDA.cache_tag  # what sys.implementation.cache_tag is on the runtime


def interpreter(version: str = runtime.PYTHON_VERSION) -> str | None:
    """A Python of `version` that runs: `LAMBDA_PYTHON` if it is one, else `python<version>` on
    PATH, else pyenv's installed one; None if there is none."""
    for candidate in (os.environ.get("LAMBDA_PYTHON"), shutil.which(f"python{version}")):
        if candidate and _runs_as(candidate, version):
            return candidate
    candidate = _pyenv_python(version)  # asked last: it runs pyenv
    return candidate if candidate and _runs_as(candidate, version) else None


def _runs_as(python: str, version: str) -> bool:
    try:
        probe = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == version


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _pyenv_python(version: str) -> str | None:
    """pyenv's newest installed `version` (`pyenv prefix 3.12` -> ~/.pyenv/versions/3.12.1), also
    when pyenv itself is not on PATH (a shell that never ran its init)."""
    pyenv = shutil.which("pyenv") or str(pyenv_root() / "bin" / "pyenv")
    try:
        found = subprocess.run(
            [pyenv, "prefix", version], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    prefix = found.stdout.strip().splitlines()[-1] if found.returncode == 0 and found.stdout.strip() else ""
    python = Path(prefix) / "bin" / f"python{version}"
    return str(python) if prefix and python.is_file() else None


def pyenv_has(version: str) -> bool:
    """Whether pyenv has a `version` (3.12: any 3.12.x) installed."""
    return any((pyenv_root() / "versions").glob(f"{version}.*/bin/python{version}"))


def compile_bundle(zip_path: Path, python: str) -> int:
    """Add a `__pycache__/<module>.<tag>.pyc` for every `.py` in the zip, compiled by `python`;
    returns how many. The zip's other entries are copied unchanged (modes included). (The import
    system sets each code object's file name to where its source is found, so the scratch path
    compiled here never shows in a traceback.)"""
    with tempfile.TemporaryDirectory(prefix="bytecode-") as scratch:
        tree = Path(scratch) / "tree"
        with zipfile.ZipFile(zip_path) as bundle:
            bundle.extractall(tree)
            entries = bundle.infolist()
        result = subprocess.run(
            [
                python,
                "-I",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                str(tree),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        # compileall also reports files it cannot compile (a package's test data written for
        # another Python): those are never imported, and stay sources only.
        compiled = sorted(tree.rglob("__pycache__/*.pyc"))
        if not compiled:
            raise RuntimeError(f"{python} compiled nothing: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        rebuilt = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(zip_path) as bundle, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                out.writestr(entry, bundle.read(entry.filename))
            for path in compiled:
                name = path.relative_to(tree).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, path.read_bytes())
        rebuilt.replace(zip_path)
        return len(compiled)
