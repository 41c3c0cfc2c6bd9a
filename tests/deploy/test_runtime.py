"""The packaged functions run on python3.12 whatever Python packages them, and the bundle is built
for that runtime: the templates' Runtime against the WHEEL tags and extension modules in
deployment.zip, the dependency closure evaluated for 3.12, and the wheelhouse. (The bundle run under
3.12 itself: tests/deploy/test_lambda_runtime.py.)"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

from deploy import dependencies, package, runtime, stages, wheelhouse

ROOT = Path(__file__).resolve().parents[2]
STAGES = stages.stage_names()
# Lambda's Python runtimes and the glibc of their OS (python3.12 and later: Amazon Linux 2023).
RUNTIME_GLIBC = {"python3.12": (2, 34), "python3.13": (2, 34)}


def _fits(tag: str, python: str, machine: str) -> bool:
    """A wheel tag against a Lambda runtime, written out independently of deploy/runtime.py."""
    interpreter, abi, platform = tag.split("-")
    cp = "cp" + python.removeprefix("python").replace(".", "")
    if platform == "any":
        return abi == "none" and interpreter in ("py3", "py2.py3")
    legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if match:
        glibc, arch = (int(match.group(1)), int(match.group(2))), match.group(3)
    else:
        base, _, arch = platform.partition("_")
        if base not in legacy:
            return False
        glibc = legacy[base]
    if arch != machine or glibc > RUNTIME_GLIBC[python]:
        return False
    if abi == "abi3":
        return int(interpreter.removeprefix("cp3")) <= int(cp.removeprefix("cp3"))
    return interpreter == abi == cp


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_the_runtime_matches_every_wheel_in_the_bundle(stage, sam, terraform, packaged):
    runtimes = {sam[stage]["Resources"][f]["Properties"]["Runtime"] for f in ("APIHandler", "JwtAuthorizer")}
    runtimes |= {f["runtime"] for f in terraform[stage]["resource"]["aws_lambda_function"].values()}
    assert runtimes == {"python3.12"}
    (python,) = runtimes
    machines = {
        a
        for f in ("APIHandler", "JwtAuthorizer")
        for a in sam[stage]["Resources"][f]["Properties"]["Architectures"]
    }
    assert machines == {"x86_64"}
    (machine,) = machines
    for fmt in package.FORMATS:
        tags = package.wheel_tags(packaged[stage][fmt] / "deployment.zip")
        assert len(tags) == len(package.runtime_pins())
        compiled = {top for top, (purelib, _) in tags.items() if not purelib}
        assert {top.split("-")[0] for top in compiled} >= {
            "pydantic_core",
            "sqlalchemy",
            "cffi",
            "argon2_cffi_bindings",
        }
        for top, (purelib, found) in tags.items():
            assert any(_fits(tag, python, machine) for tag in found), (top, found)
            if not purelib:
                assert all(tag.split("-")[2] != "any" for tag in found), top
        names = zipfile.ZipFile(packaged[stage][fmt] / "deployment.zip").namelist()
        modules = [n for n in names if n.endswith(".so")]
        assert modules and all(n.endswith((".cpython-312-x86_64-linux-gnu.so", ".abi3.so")) for n in modules)
        assert not [n for n in names if "cpython-311" in n]
        pyc = [n for n in names if n.endswith(".pyc")]
        assert all(n.endswith(".cpython-312.pyc") and "/__pycache__/" in f"/{n}" for n in pyc), pyc[:3]


def _wheel_bundle(tmp_path: Path, wheel_tag: str, module: str | None = None) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("app.py", "")
        bundle.writestr("chalicelib/auth/authorizer.py", "")
        for name, version in package.runtime_pins().items():
            tag = wheel_tag if name == "pydantic_core" else "py3-none-any"
            purelib = "false" if name == "pydantic_core" else "true"
            bundle.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
            bundle.writestr(f"{name}-{version}.dist-info/WHEEL", f"Root-Is-Purelib: {purelib}\nTag: {tag}\n")
        if module:
            bundle.writestr(module, b"\x7fELF")
    return path


def test_the_bundle_check_accepts_cp312_and_abi3_wheels(tmp_path):
    package.check_bundle(
        _wheel_bundle(
            tmp_path,
            "cp312-cp312-manylinux_2_17_x86_64",
            "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so",
        )
    )
    package.check_bundle(_wheel_bundle(tmp_path, "cp310-abi3-manylinux_2_28_x86_64", "_ffi.abi3.so"))


@pytest.mark.parametrize(
    "tag",
    [
        "cp311-cp311-manylinux_2_17_x86_64",  # the packaging interpreter's ABI
        "cp312-cp312-manylinux_2_35_x86_64",  # newer glibc than Amazon Linux 2023
        "cp312-cp312-manylinux_2_17_aarch64",  # the other architecture
        "cp312-cp312-musllinux_1_2_x86_64",
        "cp312-cp312-linux_x86_64",  # a local build
        "cp313-abi3-manylinux_2_17_x86_64",
    ],
)  # stable ABI of a later Python
def test_the_bundle_check_refuses_a_wheel_the_runtime_cannot_load(tmp_path, tag):
    with pytest.raises(package.PackagingError, match="not built for python3.12"):
        package.check_bundle(_wheel_bundle(tmp_path, tag))


def test_the_bundle_check_refuses_an_extension_module_of_another_python(tmp_path):
    with pytest.raises(package.PackagingError, match="would not import"):
        package.check_bundle(
            _wheel_bundle(
                tmp_path,
                "cp312-cp312-manylinux_2_17_x86_64",
                "pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so",
            )
        )


def test_the_runtime_module_agrees_with_the_independent_rule():
    for tag in [
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux2014_x86_64",
        "cp39-abi3-manylinux_2_34_x86_64",
        "py3-none-any",
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux_2_35_x86_64",
        "cp312-cp312-manylinux_2_17_aarch64",
        "cp313-abi3-manylinux_2_17_x86_64",
        "cp312-none-win_amd64",
    ]:
        assert runtime.tag_fits(tag) == _fits(tag, runtime.RUNTIME, runtime.ARCHITECTURE), tag
    assert runtime.RUNTIME == f"python{runtime.PYTHON_VERSION}" and runtime.ABI == "cp312"


def _metadata(name: str, version: str, *requires: str) -> str:
    return (
        "\n".join([f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)])
        + "\n\nA description: with colons.\nRequires-Dist: not-a-header\n"
    )


def test_the_closure_is_evaluated_for_python_3_12():
    bundled = [
        _metadata("pydantic", "2.14.3", "pydantic-core==2.50.4", "typing-extensions>=4.16.0"),
        _metadata("pydantic_core", "2.50.4"),
        _metadata("typing_extensions", "4.16.0"),
        # markers for other Pythons or extras are not needed on 3.12
        _metadata(
            "redis",
            "8.1.0",
            "async-timeout>=4.0.3; python_full_version < '3.11.3'",
            "hiredis>=3; extra == 'hiredis'",
            "tomli; python_version < '3.11'",
        ),
    ]
    assert dependencies.closure_problems(bundled) == []
    missing = bundled + [
        _metadata("scramp", "1.5.0", "asn1crypto>=1.5.1", "backports-x; python_version >= '3.12'")
    ]
    found = dependencies.closure_problems(missing)
    assert len(found) == 2 and "asn1crypto" in found[0] and "backports-x" in found[1]
    wrong = [_metadata("pydantic", "2.14.3", "pydantic-core==2.50.4"), _metadata("pydantic-core", "2.41.0")]
    assert dependencies.closure_problems(wrong) == [
        "pydantic 2.14.3 needs pydantic-core==2.50.4; the bundle has 2.41.0"
    ]


def test_the_installed_set_is_rebuilt_when_the_pins_change(tmp_path):
    first, same, other = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    first.write_text("six==1.17.0\n")
    same.write_text("six==1.17.0\n")
    other.write_text("six==1.16.0\n")
    assert dependencies.digest(first) == dependencies.digest(same)
    assert dependencies.digest(first) != dependencies.digest(other)


def test_a_pin_pip_cannot_get_fails_and_leaves_nothing_behind(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-distribution-for-lambda==0.0.1\n")
    empty = tmp_path / "wheelhouse"
    empty.mkdir()
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty), "PIP_CONFIG_FILE": os.devnull}
    with pytest.raises(dependencies.DependencyError, match="python3.12"):
        dependencies.site_packages(env, requirements=requirements, cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_wheelhouse_downloads_for_the_runtime():
    command = wheelhouse.pip_command(Path("/tmp/x"))
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--abi") + 1] == "cp312"
    assert "manylinux_2_34_x86_64" in command and "manylinux_2_35_x86_64" not in command
    assert "--only-binary=:all:" in command
