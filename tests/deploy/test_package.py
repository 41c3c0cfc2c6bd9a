"""deploy/package.py's own guards, and packaging offline from a wheelhouse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy import package, runtime, stages, wheelhouse

ROOT = Path(__file__).resolve().parents[2]


def test_packaging_sees_only_the_stage_and_gets_its_region(monkeypatch):
    for name in package.APP_VARIABLES:
        monkeypatch.setenv(name, "from the caller")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    env = package.packaging_environment("prod", None)
    assert not set(env) & set(package.APP_VARIABLES)
    assert env["AWS_DEFAULT_REGION"] == stages.region("prod")


def test_every_setting_the_app_reads_is_stripped_before_packaging():
    source = (ROOT / "chalicelib" / "config.py").read_text()
    read = set(re.findall(r'opt\("([A-Z_]+)"\)', source)) | set(re.findall(r'_int\(env, "([A-Z_]+)"', source))
    assert read and read <= set(package.APP_VARIABLES)


def test_a_wheelhouse_means_no_index(tmp_path):
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"")
    env = package.packaging_environment("dev", tmp_path)
    assert env["PIP_NO_INDEX"] == "1" and env["PIP_FIND_LINKS"] == str(tmp_path.resolve())
    with pytest.raises(package.PackagingError, match="no wheels"):
        package.packaging_environment("dev", tmp_path / "empty")


def test_a_stage_breaking_its_rules_is_not_packaged(monkeypatch, tmp_path):
    monkeypatch.setattr(stages, "problems", lambda stage, **_: ["dev/api_handler: broken on purpose"])
    with pytest.raises(package.PackagingError, match="broken on purpose"):
        package.package("dev", out=tmp_path)
    assert not any(tmp_path.iterdir())


def _bundle(tmp_path: Path, pins: dict[str, str], *, app: bool = True) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        if app:
            bundle.writestr("app.py", "")
            bundle.writestr("chalicelib/auth/authorizer.py", "")
        for name, version in pins.items():
            bundle.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
            bundle.writestr(f"{name}-{version}.dist-info/WHEEL", "Root-Is-Purelib: true\nTag: py3-none-any\n")
    return path


def test_the_bundle_check_accepts_exactly_the_pins(tmp_path):
    package.check_bundle(_bundle(tmp_path, package.runtime_pins()))


def test_the_bundle_check_refuses_a_missing_dependency(tmp_path):
    pins = dict(package.runtime_pins())
    pins.pop("argon2_cffi_bindings")
    with pytest.raises(package.PackagingError, match="argon2_cffi_bindings"):
        package.check_bundle(_bundle(tmp_path, pins))


def test_the_bundle_check_refuses_an_unpinned_extra_or_another_version(tmp_path):
    with pytest.raises(package.PackagingError, match="boto3"):
        package.check_bundle(_bundle(tmp_path, {**package.runtime_pins(), "boto3": "1.0"}))
    with pytest.raises(package.PackagingError, match="sqlalchemy"):
        package.check_bundle(_bundle(tmp_path, {**package.runtime_pins(), "sqlalchemy": "1.4.0"}))


def test_the_bundle_check_refuses_a_bundle_without_the_app(tmp_path):
    with pytest.raises(package.PackagingError, match="app.py"):
        package.check_bundle(_bundle(tmp_path, package.runtime_pins(), app=False))


def test_the_merge_template_adds_responses_throttle_and_log_groups():
    merge = package.merge_template("prod")["Resources"]
    body = merge["RestAPI"]["Properties"]["DefinitionBody"]
    assert set(body) == {"x-amazon-apigateway-gateway-responses"}
    assert merge["RestAPI"]["Properties"]["MethodSettings"][0]["ThrottlingBurstLimit"] == 100
    assert {k for k in merge if k.endswith("LogGroup")} == {
        "APIHandlerLogGroup",
        "JwtAuthorizerLogGroup",
        "RetryInvitationsLogGroup",
    }


@pytest.mark.slow
def test_packaging_works_offline_from_a_wheelhouse(tmp_path):
    """A fresh copy of the project (no Chalice cache) packaged with PIP_NO_INDEX=1 from the wheelhouse."""
    house = wheelhouse.DEFAULT
    wheelhouse.build(house)  # kept under .devdata/; pip downloads only what it does not hold yet
    wheels = {
        w.name.split("-")[0].lower(): w.name
        for w in house.glob("*.whl")
        if any(runtime.tag_fits(t) for t in _tags(w.name))
    }
    assert set(package.runtime_pins()) <= set(wheels), wheels
    project = tmp_path / "project"
    for name in ("deploy", "chalicelib", ".chalice"):
        shutil.copytree(
            ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "deployments")
        )
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, project / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.package",
            "dev",
            "--format",
            "cloudformation",
            "--wheelhouse",
            str(house),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    package.check_bundle(project / "build" / "dev" / "cloudformation" / "deployment.zip")
    assert (
        json.loads((project / "build" / "dev" / "cloudformation" / "sam.json").read_text())["Resources"][
            "APIHandler"
        ]["Properties"]["Runtime"]
        == runtime.RUNTIME
    )


def _tags(wheel_name: str) -> list[str]:
    """The tags a wheel's file name stands for (compressed tag sets expanded)."""
    interpreters, abis, platforms = wheel_name[: -len(".whl")].split("-")[-3:]
    return [
        f"{i}-{a}-{p}" for i in interpreters.split(".") for a in abis.split(".") for p in platforms.split(".")
    ]
