"""SnapStart, versions and the alias in both stages' packaged templates: in the SAM template, in
what SAM's own transform makes of it (what CloudFormation deploys), and in the Terraform output;
API Gateway invokes only the alias, never $LATEST or the unqualified function. Also the stage
options: SnapStart off and the authorizer cache at 0, and what SnapStart cannot be combined with."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from deploy import package, stages
from tests.deploy.conftest import sam_transform

pytestmark = pytest.mark.slow

STAGES = stages.stage_names()
FUNCTIONS = {
    "APIHandler": "api_handler",
    "JwtAuthorizer": "jwt_authorizer",
    "RetryInvitations": "retry_invitations",  # the schedule's
}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _invocation_uris(body: dict[str, Any]) -> list[Any]:
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]
        for methods in body["paths"].values()
        for method, operation in methods.items()
        if operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    ]
    uris += [
        d["x-amazon-apigateway-authorizer"]["authorizerUri"] for d in body["securityDefinitions"].values()
    ]
    return uris


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_publishes_a_version_and_the_alias_with_snapstart(stage, sam):
    assert stages.SNAPSTART[stage] is True
    for logical_id in FUNCTIONS:
        properties = sam[stage]["Resources"][logical_id]["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert properties["AutoPublishAlias"] == stages.ALIAS == "live"
        assert properties["AutoPublishAliasAllProperties"] is True
        assert stages.snapstart_conflicts(logical_id, properties) == []
        assert not {"ProvisionedConcurrencyConfig", "FileSystemConfigs", "EphemeralStorage"} & set(properties)


@pytest.mark.parametrize("stage", STAGES)
def test_what_cloudformation_deploys_has_a_version_and_an_alias_per_function(stage, cloudformation):
    template = cloudformation[stage]
    versions = _of_type(template, "AWS::Lambda::Version")
    aliases = _of_type(template, "AWS::Lambda::Alias")
    assert set(aliases) == {f"{logical_id}Alias{stages.ALIAS}" for logical_id in FUNCTIONS}
    for logical_id in FUNCTIONS:
        function = template["Resources"][logical_id]
        assert function["Type"] == "AWS::Lambda::Function"
        assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        (version_id,) = [
            k for k, v in versions.items() if v["Properties"]["FunctionName"] == {"Ref": logical_id}
        ]
        assert versions[version_id]["DeletionPolicy"] == "Retain"  # earlier versions stay for a rollback
        alias = aliases[f"{logical_id}Alias{stages.ALIAS}"]["Properties"]
        assert alias == {
            "Name": stages.ALIAS,
            "FunctionName": {"Ref": logical_id},
            "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        }


@pytest.mark.parametrize("stage", STAGES)
def test_api_gateway_invokes_only_the_aliases(stage, cloudformation, app_module):
    template = cloudformation[stage]
    (api,) = _of_type(template, "AWS::ApiGateway::RestApi").values()
    body = api["Properties"]["Body"]
    uris = _invocation_uris(body)
    routes = sum(len([m for m in methods if m != "OPTIONS"]) for methods in app_module.app.routes.values())
    assert len(uris) == routes + 1  # every route, and the authorizer
    api_alias, authorizer_alias = (f"APIHandlerAlias{stages.ALIAS}", f"JwtAuthorizerAlias{stages.ALIAS}")
    for uri in uris[:-1]:
        assert uri == {
            "Fn::Sub": [
                "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
                "functions/${FunctionAlias}/invocations",
                {"FunctionAlias": {"Ref": api_alias}},
            ]
        }
    assert uris[-1]["Fn::Sub"][1] == {"FunctionAlias": {"Ref": authorizer_alias}}
    text = json.dumps(body)
    for logical_id in FUNCTIONS:  # never the unqualified function ($LATEST)
        assert f"${{{logical_id}.Arn}}" not in text and f'"{logical_id}"' not in text
    permissions = {
        p["Properties"]["FunctionName"]["Ref"]: p["Properties"]["Principal"]
        for p in _of_type(template, "AWS::Lambda::Permission").values()
    }
    assert permissions == {
        api_alias: "apigateway.amazonaws.com",
        authorizer_alias: "apigateway.amazonaws.com",
        # The schedule invokes its function's alias too (SAM's Schedule event with AutoPublishAlias).
        f"RetryInvitationsAlias{stages.ALIAS}": "events.amazonaws.com",
    }
    assert template["Outputs"]["APIHandlerAliasArn"]["Value"] == {"Ref": api_alias}
    assert template["Outputs"]["JwtAuthorizerAliasArn"]["Value"] == {"Ref": authorizer_alias}
    assert template["Outputs"]["JwtAuthorizerName"]["Value"] == {"Ref": "JwtAuthorizer"}  # for update-alias


def test_a_configuration_change_alone_publishes_a_new_version(sam):
    """AutoPublishAliasAllProperties: new environment values reach the alias even with the same code."""

    def version_id(template):
        (found,) = [
            k
            for k, v in _of_type(sam_transform(template), "AWS::Lambda::Version").items()
            if v["Properties"]["FunctionName"] == {"Ref": "APIHandler"}
        ]
        return found

    changed = copy.deepcopy(sam["dev"])
    changed["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]["JWT_TTL_SECONDS"] = "3600"
    assert version_id(changed) != version_id(sam["dev"])
    assert version_id(copy.deepcopy(sam["dev"])) == version_id(sam["dev"])  # nothing changed: no new version


@pytest.mark.parametrize("stage", STAGES)
def test_terraform_publishes_versions_with_snapstart_and_the_api_invokes_the_aliases(stage, terraform):
    tf = terraform[stage]
    resources = tf["resource"]
    assert tf["terraform"]["required_providers"]["aws"]["version"] == package.TERRAFORM_AWS_PROVIDER
    swagger_text = tf["locals"]["chalice_api_swagger"]
    for name in stages.FUNCTIONS:
        function = resources["aws_lambda_function"][name]
        assert function["publish"] is True
        assert function["snap_start"] == {"apply_on": "PublishedVersions"}
        assert resources["aws_lambda_alias"][name] == {
            "name": "live",
            "function_name": f"${{aws_lambda_function.{name}.function_name}}",
            "function_version": f"${{aws_lambda_function.{name}.version}}",
        }
        assert f"aws_lambda_function.{name}.invoke_arn" not in swagger_text
        if name in stages.API_FUNCTIONS:
            assert f"${{aws_lambda_alias.{name}.invoke_arn}}" in swagger_text
    swagger = json.loads(swagger_text)
    uris = _invocation_uris(swagger)
    assert set(uris[:-1]) == {"${aws_lambda_alias.api_handler.invoke_arn}"}
    assert uris[-1] == "${aws_lambda_alias.jwt_authorizer.invoke_arn}"
    qualifiers = {p["function_name"]: p["qualifier"] for p in resources["aws_lambda_permission"].values()}
    assert qualifiers == {
        f"${{aws_lambda_function.{n}.arn}}": f"${{aws_lambda_alias.{n}.name}}" for n in stages.FUNCTIONS
    }
    [schedule] = resources["aws_cloudwatch_event_target"].values()
    assert schedule["arn"] == "${aws_lambda_alias.retry_invitations.arn}"
    [rule] = resources["aws_cloudwatch_event_rule"].values()
    assert rule["schedule_expression"] == "rate(5 minutes)"


def test_snapstart_off_and_no_authorizer_cache_for_a_stage(monkeypatch, tmp_path):
    """The per-stage switches: SnapStart off keeps the versions and the alias (and API Gateway on
    it) without snapshots; a cache of 0 lands as 0 in both outputs."""
    monkeypatch.setitem(stages.SNAPSTART, "dev", False)
    monkeypatch.setitem(stages.AUTHORIZER_CACHE_SECONDS, "dev", 0)
    written = package.package("dev", out=tmp_path)
    template = json.loads((written["cloudformation"] / "sam.json").read_text())
    for logical_id in FUNCTIONS:
        properties = template["Resources"][logical_id]["Properties"]
        assert "SnapStart" not in properties
        assert properties["AutoPublishAlias"] == "live"
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert (
        body["securityDefinitions"]["jwt_authorizer"]["x-amazon-apigateway-authorizer"][
            "authorizerResultTtlInSeconds"
        ]
        == 0
    )
    transformed = sam_transform(template)
    assert len(_of_type(transformed, "AWS::Lambda::Alias")) == 3
    assert all(
        "SnapStart" not in f["Properties"] for f in _of_type(transformed, "AWS::Lambda::Function").values()
    )
    tf = json.loads((written["terraform"] / "chalice.tf.json").read_text())
    for name in stages.FUNCTIONS:
        assert "snap_start" not in tf["resource"]["aws_lambda_function"][name]
        assert tf["resource"]["aws_lambda_function"][name]["publish"] is True
    swagger = json.loads(tf["locals"]["chalice_api_swagger"])
    assert (
        swagger["securityDefinitions"]["jwt_authorizer"]["x-amazon-apigateway-authorizer"][
            "authorizerResultTtlInSeconds"
        ]
        == 0
    )


def test_a_template_snapstart_cannot_run_is_not_packaged(monkeypatch, tmp_path):
    """Chalice's configuration has no ephemeral storage, EFS or provisioned concurrency; should a
    merge template ever add one, packaging refuses instead of failing at deploy time."""
    original = package.merge_template

    def with_storage(stage):
        merged = original(stage)
        merged["Resources"]["APIHandler"] = {"Properties": {"EphemeralStorage": {"Size": 1024}}}
        return merged

    monkeypatch.setattr(package, "merge_template", with_storage)
    with pytest.raises(package.PackagingError, match="ephemeral storage"):
        package.package("dev", out=tmp_path, formats=("cloudformation",))
