"""What `make package` produces, read back from the packaged templates of both stages: routes behind
the authorizer, the stage's authorizer cache, VPC, environment, concurrency, IAM, Gateway Responses with CORS
headers, throttling, log groups, the Lambda bundle, and cfn-lint on the CloudFormation template."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.endpoint import public_routes
from deploy import gateway_responses, package, stages

pytestmark = pytest.mark.slow

STAGES = stages.stage_names()
AUTHORIZED = [{"jwt_authorizer": []}]


def _swagger(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]


def _operations(swagger: dict[str, Any]):
    for path, methods in swagger["paths"].items():
        for method, operation in methods.items():
            if method != "options":
                yield path, method.upper(), operation


@pytest.fixture
def app_routes(app_module) -> set[tuple[str, str]]:
    return {(path, method) for path, entries in app_module.app.routes.items() for method in entries}


@pytest.mark.parametrize("stage", STAGES)
def test_every_route_but_the_public_ones_goes_through_the_authorizer(stage, sam, app_routes):
    swagger = _swagger(sam[stage])
    seen = set()
    for path, method, operation in _operations(swagger):
        seen.add((path, method))
        if (path, method) in public_routes():
            assert "security" not in operation, (path, method)
        else:
            assert operation.get("security") == AUTHORIZED, (path, method)
    assert seen == app_routes
    assert public_routes() <= seen


@pytest.mark.parametrize("stage", STAGES)
def test_the_authorizer_caches_for_the_stages_seconds_by_the_authorization_header(stage, sam):
    """The code says ttl_seconds=0 (chalice local, the test client); the packaged API caches for
    the stage's AUTHORIZER_CACHE_SECONDS, keyed by the Authorization header alone."""
    (name,) = _swagger(sam[stage])["securityDefinitions"]
    authorizer = _swagger(sam[stage])["securityDefinitions"][name]
    assert authorizer["in"] == "header" and authorizer["name"] == "Authorization"
    settings = authorizer["x-amazon-apigateway-authorizer"]
    assert settings["type"] == "token"
    assert "identitySource" not in settings  # a TOKEN authorizer's identity source is the header above
    assert settings["authorizerResultTtlInSeconds"] == stages.AUTHORIZER_CACHE_SECONDS[stage]
    assert settings["authorizerUri"]["Fn::Sub"][1] == {"FunctionAlias": {"Ref": "JwtAuthorizer.Alias"}}
    function = sam[stage]["Resources"]["JwtAuthorizer"]["Properties"]
    assert function["Handler"] == "chalicelib.auth.authorizer.jwt_authorizer"


@pytest.mark.parametrize("stage", STAGES)
def test_every_lambda_runs_in_the_stages_vpc(stage, sam):
    config = stages.load_config()["stages"][stage]
    for logical_id in ("APIHandler", "JwtAuthorizer", "RetryInvitations"):
        vpc = sam[stage]["Resources"][logical_id]["Properties"]["VpcConfig"]
        assert vpc == {"SecurityGroupIds": config["security_group_ids"], "SubnetIds": config["subnet_ids"]}
        assert len(vpc["SubnetIds"]) >= 2  # Lambda in at least two availability zones


@pytest.mark.parametrize("stage", STAGES)
def test_environment_holds_the_stage_settings_and_secret_arns_but_no_secret(stage, sam):
    resources = sam[stage]["Resources"]
    api_env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    auth_env = resources["JwtAuthorizer"]["Properties"]["Environment"]["Variables"]
    assert api_env == stages.function(stage, "api_handler").environment
    assert auth_env == stages.function(stage, "jwt_authorizer").environment
    for env in (api_env, auth_env):
        assert not set(env) & set(stages.FORBIDDEN_VARIABLES)
        assert env["JWT_ISSUER"] == f"interactions-{stage}"
        assert env["JWT_AUDIENCE"] == f"interactions-api-{stage}"
        assert env["JWT_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert env["REDIS_ENDPOINT"].startswith("rediss://")
    if stages.function(stage, "api_handler").settings().uses_proxy_iam:
        assert "DB_SECRET_ARN" not in api_env  # IAM authentication: no database secret
    else:
        assert api_env["DB_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert auth_env.get("DB_SECRET_ARN", "") == ""  # the authorizer never touches the database
    assert not set(auth_env) & {"DB_PROXY", "DB_PROXY_AUTH", "DB_PROXY_USER", "DB_PROXY_DATABASE"}


def test_dev_goes_straight_to_the_database_and_prod_through_rds_proxy_with_iam(sam):
    """The packaged template's proxy wiring: prod's two database functions connect to the proxy's
    endpoint with IAM authentication and may `rds-db:connect` as that user at that proxy only;
    dev's connect to the secret's host and have no rds-db grant."""
    for stage, proxied in (("dev", False), ("prod", True)):
        resources = sam[stage]["Resources"]
        for logical_id, role_id in (
            ("APIHandler", "ApiHandlerRole"),
            ("RetryInvitations", "RetryInvitationsRole"),
        ):
            env = resources[logical_id]["Properties"]["Environment"]["Variables"]
            statements = resources[role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            grants = [s for s in statements if any(a.startswith("rds-db:") for a in s["Action"])]
            if not proxied:
                assert "DB_PROXY" not in env and env["DB_SECRET_ARN"]
                assert grants == []
                continue
            assert env["DB_PROXY"].endswith(".rds.amazonaws.com")
            assert (env["DB_PROXY_AUTH"], env["DB_PROXY_USER"]) == ("iam", "interactions_app")
            assert env["DB_PROXY_DATABASE"] == "interactions"
            (grant,) = grants
            assert grant["Action"] == ["rds-db:connect"] and grant["Effect"] == "Allow"
            (resource,) = grant["Resource"]
            assert resource.startswith(f"arn:aws:rds-db:{stages.region(stage)}:")
            assert ":dbuser:prx-" in resource and resource.endswith("/interactions_app")
            assert "*" not in resource
        auth = resources["JwtAuthorizerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert not any(a.startswith("rds-db:") for s in auth for a in s["Action"])


def test_the_dev_stage_keeps_the_issuer_and_audience_the_tests_use(sam):
    env = sam["dev"]["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert (env["JWT_ISSUER"], env["JWT_AUDIENCE"]) == ("interactions-dev", "interactions-api-dev")


@pytest.mark.parametrize("stage", STAGES)
def test_timeouts_memory_and_reserved_concurrency(stage, sam):
    api = sam[stage]["Resources"]["APIHandler"]["Properties"]
    authorizer = sam[stage]["Resources"]["JwtAuthorizer"]["Properties"]
    statement_ms = stages.function(stage, "api_handler").settings().db_statement_timeout_ms
    assert statement_ms < api["Timeout"] * 1000 < stages.API_GATEWAY_TIMEOUT_S * 1000
    assert authorizer["Timeout"] < stages.API_GATEWAY_TIMEOUT_S
    assert api["MemorySize"] >= stages.MIN_API_MEMORY_MB
    concurrency = api["ReservedConcurrentExecutions"]
    assert stages.database_connections(stage) + stages.OPS_CONNECTIONS <= stages.CONNECTION_BUDGET[stage]
    if not stages.function(stage, "api_handler").settings().uses_db_proxy:
        assert (concurrency + 1) * stages.CONNECTIONS_PER_CONTAINER == stages.database_connections(stage)
    assert "ReservedConcurrentExecutions" not in authorizer


@pytest.mark.parametrize("stage", STAGES)
def test_each_lambda_has_its_own_role_with_the_policy_file_and_nothing_more(stage, sam):
    resources = sam[stage]["Resources"]
    assert "DefaultRole" not in resources  # autogen_policy is off
    for logical_id, role_id, function_name in (
        ("APIHandler", "ApiHandlerRole", "api_handler"),
        ("JwtAuthorizer", "JwtAuthorizerRole", "jwt_authorizer"),
        ("RetryInvitations", "RetryInvitationsRole", "retry_invitations"),
    ):
        assert resources[logical_id]["Properties"]["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
        policies = resources[role_id]["Properties"]["Policies"]
        assert len(policies) == 1
        document = policies[0]["PolicyDocument"]
        function = stages.function(stage, function_name)
        assert document == function.policy()
        secrets = [s for s in document["Statement"] if s["Action"] == ["secretsmanager:GetSecretValue"]]
        assert len(secrets) == 1
        assert set(secrets[0]["Resource"]) == function.secret_arns()
        assert "*" not in json.dumps(secrets[0]["Resource"])
        for statement in document["Statement"]:
            if statement["Sid"] == "WriteOwnLogs":
                assert all(
                    r.split(":log-group:")[1].startswith(f"/aws/lambda/interactions-api-{stage}")
                    for r in statement["Resource"]
                )


@pytest.mark.parametrize("stage", STAGES)
def test_the_schedule_retries_invitations_every_five_minutes_with_ses_scoped_to_mail_from(stage, sam):
    resources = sam[stage]["Resources"]
    retry = resources["RetryInvitations"]["Properties"]
    assert retry["Handler"] == "chalicelib.sites.schedule.retry_invitations"
    assert [e["Properties"]["Schedule"] for e in retry["Events"].values()] == ["rate(5 minutes)"]
    assert retry["ReservedConcurrentExecutions"] == 1
    assert retry["Environment"]["Variables"] == stages.function(stage, "retry_invitations").environment
    mail_from = stages.function(stage, "api_handler").environment["MAIL_FROM"]
    identity = stages.ses_identity_arn(stage, mail_from)
    assert identity.endswith(":identity/" + mail_from.split("@")[1].rstrip(">"))
    for role in ("ApiHandlerRole", "RetryInvitationsRole", "JwtAuthorizerRole"):
        document = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]
        ses = [s for s in document["Statement"] if any(a.startswith("ses:") for a in s["Action"])]
        if role == "JwtAuthorizerRole":
            assert ses == []
        else:
            assert [(s["Action"], s["Resource"]) for s in ses] == [(["ses:SendEmail"], [identity])]
    for variables in (
        resources["APIHandler"]["Properties"]["Environment"]["Variables"],
        retry["Environment"]["Variables"],
    ):
        assert "MAIL_DELIVERY" not in variables or variables["MAIL_DELIVERY"] == "ses"
        assert variables["INVITE_URL"].startswith("https://") and "{token}" in variables["INVITE_URL"]


def test_the_authorizer_cannot_read_the_database_secret(sam):
    for stage in STAGES:
        document = sam[stage]["Resources"]["JwtAuthorizerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        db_secret = stages.function(stage, "api_handler").environment.get("DB_SECRET_ARN")
        if db_secret is None:  # IAM authentication at the proxy: no database secret anywhere
            assert stages.function(stage, "api_handler").settings().uses_proxy_iam
            assert ":secret:interactions/" + stage + "/db-" not in json.dumps(sam[stage])
            continue
        assert db_secret not in json.dumps(document)


@pytest.mark.parametrize("stage", STAGES)
def test_gateway_responses_carry_the_envelope_cors_headers_and_request_id(stage, sam):
    swagger = _swagger(sam[stage])
    responses = swagger["x-amazon-apigateway-gateway-responses"]
    origin = stages.function(stage, "api_handler").settings().cors_allow_origin
    expected = {
        "UNAUTHORIZED": ("401", "AUTHENTICATION_ERROR"),
        "ACCESS_DENIED": ("403", "AUTHORIZATION_ERROR"),
        "MISSING_AUTHENTICATION_TOKEN": ("404", "RESOURCE_NOT_FOUND"),
        "REQUEST_TOO_LARGE": ("413", "PAYLOAD_TOO_LARGE"),
        "THROTTLED": ("429", "RATE_LIMITED"),
        "AUTHORIZER_FAILURE": ("503", "SERVICE_UNAVAILABLE"),
        "INTEGRATION_TIMEOUT": ("504", "TIMEOUT"),
        "DEFAULT_4XX": (None, "VALIDATION_ERROR"),
        "DEFAULT_5XX": (None, "INTERNAL_ERROR"),
    }
    for response_type, (status, code) in expected.items():
        response = responses[response_type]
        assert response.get("statusCode") == status, response_type
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{origin}'"
        assert "X-Request-Id" in headers["gatewayresponse.header.Access-Control-Expose-Headers"]
        assert "x-amzn-RequestId" in headers["gatewayresponse.header.Access-Control-Expose-Headers"]
        # The gateway's request id, in the header every answer of the application carries too.
        assert headers["gatewayresponse.header.X-Request-Id"] == "context.requestId"
        body = json.loads(
            response["responseTemplates"]["application/json"].replace("$context.requestId", "r-1")
        )
        assert body == {
            "status": "error",
            "error": {"code": code, "message": body["error"]["message"], "request_id": "r-1"},
        }
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


@pytest.mark.parametrize("stage", STAGES)
def test_gateway_and_preflight_allow_the_same_origin_as_the_stage(stage, sam):
    """The preflight's headers come from importing app.py while packaging: the packaging process must
    see only the stage's variables, never the caller's (the test process has its own origin)."""
    origin = stages.function(stage, "api_handler").settings().cors_allow_origin
    swagger = _swagger(sam[stage])
    for path, methods in swagger["paths"].items():
        params = methods["options"]["x-amazon-apigateway-integration"]["responses"]["default"][
            "responseParameters"
        ]
        assert params["method.response.header.Access-Control-Allow-Origin"] == f"'{origin}'", path


def test_with_several_origins_every_preflight_names_the_requests_listed_origin(sam):
    """Deployed, a preflight is Chalice's mock OPTIONS integration: its integration response runs a
    mapping template, which overrides the static (first) origin with the request's when it is
    listed. (Both stages name one origin, where nothing is changed; this is a stage with two.)"""
    import copy

    origins = ("https://app.example.com", "https://admin.example.com")
    swagger = copy.deepcopy(_swagger(sam["prod"]))
    assert gateway_responses.preflights_name_the_origin(copy.deepcopy(swagger), origins[:1]) == 0
    assert gateway_responses.preflights_name_the_origin(swagger, origins) == len(swagger["paths"])
    for path, methods in swagger["paths"].items():
        preflight = methods["options"]
        assert preflight["responses"]["200"]["headers"]["Vary"] == {"type": "string"}
        response = preflight["x-amazon-apigateway-integration"]["responses"]["default"]
        assert response["responseParameters"]["method.response.header.Vary"] == "'Origin'"
        assert response["responseParameters"]["method.response.header.Access-Control-Allow-Origin"] == (
            f"'{origins[0]}'"
        )
        template = response["responseTemplates"]["application/json"]
        assert "$context.responseOverride.header.Access-Control-Allow-Origin = $origin" in template
        assert all(f"$origin == '{origin}'" in template for origin in origins), path
        assert template.count("#if(") == template.count("#end") == 2


@pytest.mark.parametrize("stage", STAGES)
def test_stage_throttle_and_log_groups(stage, sam):
    resources = sam[stage]["Resources"]
    (settings,) = resources["RestAPI"]["Properties"]["MethodSettings"]
    limits = stages.throttle(stage)
    assert settings == {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": limits["rate"],
        "ThrottlingBurstLimit": limits["burst"],
    }
    assert limits["burst"] <= resources["APIHandler"]["Properties"]["ReservedConcurrentExecutions"]
    for function_id in ("APIHandler", "JwtAuthorizer"):
        group = resources[f"{function_id}LogGroup"]
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
        assert group["Properties"]["RetentionInDays"] == stages.LOG_RETENTION_DAYS[stage]


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_nothing_in_the_template_or_in_what_sam_makes_of_it(
    stage, packaged, cloudformation, tmp_path
):
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    transformed = tmp_path / "transformed.json"
    transformed.write_text(json.dumps(cloudformation[stage]))
    for template in (packaged[stage]["cloudformation"] / "sam.json", transformed):
        result = subprocess.run(
            [str(cfn_lint), "--", str(template)], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{template.name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_bundle_holds_the_app_and_exactly_the_pinned_runtime_dependencies(stage, packaged):
    for fmt in package.FORMATS:
        bundle = packaged[stage][fmt] / "deployment.zip"
        package.check_bundle(bundle)  # raises on any difference
        names = zipfile.ZipFile(bundle).namelist()
        assert not [n for n in names if re.match(r"(boto3|botocore|alembic|moto|pytest|tests|devtools)/", n)]
        assert bundle.stat().st_size < 50 * 2**20


@pytest.mark.parametrize("stage", STAGES)
def test_terraform_output_has_the_same_additions(stage, terraform, sam):
    tf = terraform[stage]
    swagger = json.loads(tf["locals"]["chalice_api_swagger"])
    assert (
        swagger["x-amazon-apigateway-gateway-responses"]
        == _swagger(sam[stage])["x-amazon-apigateway-gateway-responses"]
    )
    assert (
        swagger["securityDefinitions"]["jwt_authorizer"]["x-amazon-apigateway-authorizer"][
            "authorizerResultTtlInSeconds"
        ]
        == stages.AUTHORIZER_CACHE_SECONDS[stage]
    )
    resources = tf["resource"]
    limits = stages.throttle(stage)
    assert resources["aws_api_gateway_method_settings"]["rest_api"]["settings"] == {
        "throttling_rate_limit": limits["rate"],
        "throttling_burst_limit": limits["burst"],
    }
    api = resources["aws_lambda_function"]["api_handler"]
    assert api["reserved_concurrent_executions"] == stages.function(stage, "api_handler").reserved_concurrency
    assert api["vpc_config"]["subnet_ids"] == stages.function(stage, "api_handler").subnet_ids
    assert api["environment"]["variables"] == stages.function(stage, "api_handler").environment
    for name in stages.FUNCTIONS:
        assert (
            resources["aws_cloudwatch_log_group"][name]["retention_in_days"]
            == stages.LOG_RETENTION_DAYS[stage]
        )
        policy = json.loads(resources["aws_iam_role_policy"][f"{name}_role"]["policy"])
        assert policy == stages.function(stage, name).policy()
    assert tf["terraform"]["required_version"]  # Chalice pins Terraform < 1.4 (README)


def test_gateway_response_types_are_ones_api_gateway_knows():
    import botocore.session  # type: ignore[import-untyped]

    known = (
        botocore.session.get_session().get_service_model("apigateway").shape_for("GatewayResponseType").enum
    )
    assert set(gateway_responses.RESPONSES) <= set(known)
