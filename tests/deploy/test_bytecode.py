"""The bundle's bytecode (deploy/bytecode.py): unchecked-hash .pyc files beside every module, the
zip's other entries unchanged, and only a Python of the runtime's version chosen to write them.
The runtime's own interpreter may be missing here, so the compile step is exercised with this
interpreter; the packaged bundles carry 3.12's where one is installed (tests/deploy/test_runtime.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy import bytecode, package

TAG = sys.implementation.cache_tag


def _bundle(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("app.py", "VALUE = 1\n")
        out.writestr("pkg/__init__.py", "")
        out.writestr("pkg/mod.py", "def where():\n    return where.__code__.co_filename\n")
        script = zipfile.ZipInfo("bin/tool")
        script.external_attr = 0o755 << 16
        out.writestr(script, "#!/bin/sh\n")
        out.writestr("data/readme.txt", "not python\n")
    return path


def test_every_module_gets_an_unchecked_hash_pyc_and_the_rest_is_kept(tmp_path):
    zip_path = _bundle(tmp_path / "deployment.zip")
    before = {
        i.filename: (i.external_attr, zipfile.ZipFile(zip_path).read(i))
        for i in zipfile.ZipFile(zip_path).infolist()
    }

    assert bytecode.compile_bundle(zip_path, sys.executable) == 3

    with zipfile.ZipFile(zip_path) as bundle:
        names = set(bundle.namelist())
        assert {
            f"__pycache__/app.{TAG}.pyc",
            f"pkg/__pycache__/mod.{TAG}.pyc",
            f"pkg/__pycache__/__init__.{TAG}.pyc",
        } <= names
        for name, (mode, data) in before.items():
            assert bundle.getinfo(name).external_attr == mode and bundle.read(name) == data, name
        header = bundle.read(f"__pycache__/app.{TAG}.pyc")[4:8]
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check the source; unchecked is 0b01.
    assert int.from_bytes(header, "little") == 0b01


def test_the_interpreter_loads_the_bytecode_without_looking_at_the_sources(tmp_path):
    zip_path = _bundle(tmp_path / "deployment.zip")
    bytecode.compile_bundle(zip_path, sys.executable)
    task = tmp_path / "task"
    zipfile.ZipFile(zip_path).extractall(task)
    (task / "app.py").write_text("VALUE = 2\n")  # a source changed after packaging is not read

    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import app, pkg.mod; "
            "print(app.VALUE, pkg.mod.where())",
            str(task),
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=True,
    )
    assert out.stdout.split() == ["1", str(task / "pkg" / "mod.py")]


def test_the_runtimes_python_is_asked_for_by_version(monkeypatch, tmp_path):
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    monkeypatch.setenv("LAMBDA_PYTHON", sys.executable)
    assert bytecode.interpreter(here) == sys.executable
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.99 anywhere
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))  # and no pyenv
    assert bytecode.interpreter("3.99") is None
    monkeypatch.setenv("LAMBDA_PYTHON", str(tmp_path / "missing"))
    assert bytecode.interpreter(here) is None


def test_pyenvs_python_is_found_when_the_shim_on_path_refuses_to_run(monkeypatch, tmp_path):
    """pyenv puts a `python3.99` shim on PATH that fails unless that version is selected; the
    installed one is found through `pyenv prefix 3.99`."""
    bin_dir, prefix = tmp_path / "bin", tmp_path / "versions" / "3.99.1"
    (prefix / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    scripts = {
        bin_dir / "python3.99": "echo 'pyenv: python3.99: command not found' >&2; exit 127",
        bin_dir / "pyenv": f'[ "$1 $2" = "prefix 3.99" ] && echo {prefix} || exit 1',
        prefix / "bin" / "python3.99": "echo 3.99",
    }
    for path, body in scripts.items():
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("LAMBDA_PYTHON", raising=False)
    assert bytecode.interpreter("3.99") == str(prefix / "bin" / "python3.99")
    assert bytecode.interpreter("3.98") is None  # pyenv has no such version
    # pyenv not on PATH (a shell that never ran its init): found as PYENV_ROOT/bin/pyenv
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert bytecode.interpreter("3.99") == str(prefix / "bin" / "python3.99")
    assert bytecode.pyenv_has("3.99") and not bytecode.pyenv_has("3.98")


def test_a_compile_that_fails_is_a_packaging_error(tmp_path):
    zip_path = _bundle(tmp_path / "deployment.zip")
    with pytest.raises(package.PackagingError, match="bytecode"):
        package._compile(zip_path, str(tmp_path / "no-such-python"))


@pytest.mark.slow
def test_a_bundle_with_another_pythons_bytecode_is_refused(packaged, tmp_path):
    zip_path = tmp_path / "deployment.zip"
    zip_path.write_bytes((packaged["dev"]["cloudformation"] / "deployment.zip").read_bytes())
    package.check_bundle(zip_path)
    with zipfile.ZipFile(zip_path, "a") as bundle:
        bundle.writestr("chalicelib/__pycache__/db.cpython-311.pyc", b"\0" * 16)

    with pytest.raises(package.PackagingError, match="another interpreter"):
        package.check_bundle(zip_path)
