"""Both stages packaged once per test session (SAM/CloudFormation and Terraform), for the
template tests. The Lambda runtime's wheels come from PyPI the first time, then from the
installed set cached under build/lambda-deps/."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deploy import bytecode, package, stages


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """{stage: {"cloudformation": dir, "terraform": dir}}"""
    root = tmp_path_factory.mktemp("packages")
    # With a python3.12 at hand (CI installs one), the bundles carry its bytecode, as `make package` does.
    python = bytecode.interpreter()
    return {
        stage: package.package(stage, out=root / stage, compile_with=python) for stage in stages.stage_names()
    }


@pytest.fixture(scope="session")
def sam(packaged: dict[str, dict[str, Path]]) -> dict[str, dict[str, Any]]:
    """{stage: the SAM template as JSON}"""
    return {
        stage: json.loads((dirs["cloudformation"] / "sam.json").read_text())
        for stage, dirs in packaged.items()
    }


@pytest.fixture(scope="session")
def terraform(packaged: dict[str, dict[str, Path]]) -> dict[str, dict[str, Any]]:
    return {
        stage: json.loads((dirs["terraform"] / "chalice.tf.json").read_text())
        for stage, dirs in packaged.items()
    }


def sam_transform(template: dict[str, Any], region: str = "eu-west-1") -> dict[str, Any]:
    """What CloudFormation deploys: the SAM template through SAM's own translator (offline, no
    credentials), after `aws cloudformation package` has replaced the local CodeUri with S3's."""
    import boto3  # type: ignore[import-untyped]
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/interactions-api/0123456789abcdef"
    translator = Translator(
        managed_policy_map={}, sam_parser=Parser(), boto_session=boto3.session.Session(region_name=region)
    )
    return translator.translate(template, parameter_values={})


@pytest.fixture(scope="session")
def cloudformation(sam: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{stage: the template SAM's transform makes of sam.json}"""
    return {stage: sam_transform(template, stages.region(stage)) for stage, template in sam.items()}
