"""Both stages packaged once per test session (SAM/CloudFormation and Terraform), for the
template tests. `chalice package` runs pip for Linux wheels: from PyPI the first time, then from
Chalice's cache in .chalice/deployments."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy import package, stages


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """{stage: {"cloudformation": dir, "terraform": dir}}"""
    root = tmp_path_factory.mktemp("packages")
    return {stage: package.package(stage, out=root / stage) for stage in stages.stage_names()}


@pytest.fixture(scope="session")
def sam(packaged: dict[str, dict[str, Path]]) -> dict[str, dict[str, Any]]:
    """{stage: the SAM template as JSON}"""
    return {stage: json.loads((dirs["cloudformation"] / "sam.json").read_text())
            for stage, dirs in packaged.items()}


@pytest.fixture(scope="session")
def terraform(packaged: dict[str, dict[str, Path]]) -> dict[str, dict[str, Any]]:
    return {stage: json.loads((dirs["terraform"] / "chalice.tf.json").read_text())
            for stage, dirs in packaged.items()}
