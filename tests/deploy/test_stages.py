"""The stage rules in deploy/stages.py hold for .chalice/config.json, and each rule catches the
mistake it is for."""

from __future__ import annotations

import copy
import json

import pytest

from chalicelib import config, db
from deploy import stages

STAGES = stages.stage_names()


@pytest.fixture
def edited_config(monkeypatch):
    """Edit a copy of config.json; the stage checks then read the copy."""
    edited = copy.deepcopy(stages.load_config())
    monkeypatch.setattr(stages, "load_config", lambda: edited)
    return edited


def test_there_are_dev_and_prod_stages():
    assert {"dev", "prod"} <= set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_keeps_its_rules(stage):
    assert stages.problems(stage) == []


def test_the_documented_placeholders_are_refused_for_a_deployment():
    found = stages.problems("dev", for_deploy=True)
    assert found and all("placeholder" in problem for problem in found)


def test_the_connection_arithmetic_matches_the_engine(session):
    """CONNECTIONS_PER_CONTAINER is pool_size + max_overflow of chalicelib/db.py's engine."""
    pool = db.get_engine().pool
    assert pool.size() + pool._max_overflow  # type: ignore[attr-defined]  # QueuePool's == stages.CONNECTIONS_PER_CONTAINER


def test_the_socket_timeout_rule_matches_the_engine(session):
    """The stage rule's database socket timeout (connect + statement seconds) is the read timeout
    db.py really sets on pg8000's socket, and every stage's Lambda outlasts it."""
    settings = config.get_settings()
    with db.get_engine().connect() as connection:
        sock = connection.connection.dbapi_connection._usock
        assert sock.gettimeout() == settings.db_read_timeout_s
    for stage in STAGES:
        stage_settings = stages.function(stage, "api_handler").settings()
        socket_s = stage_settings.db_read_timeout_s
        assert socket_s < stages.function(stage, "api_handler").timeout_s


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "JWT_SECRET"])
def test_a_local_only_variable_in_a_stage_is_refused(edited_config, name):
    edited_config["stages"]["dev"]["environment_variables"][name] = "x" * 40
    assert any(name in problem for problem in stages.problems("dev"))


@pytest.mark.parametrize(
    "origins, ok",
    [
        ("https://app.example.com,https://admin.example.com", True),
        ("https://app.example.com,http://localhost:5173,http://127.0.0.1:3000", True),
        ("https://app.example.com,http://app.example.com", False),  # plain http on the network
        ("*", False),
        ("https://app.example.com/", False),  # not an origin at all
    ],
)
def test_a_stage_names_its_frontends_over_https(edited_config, origins, ok):
    edited_config["stages"]["prod"]["environment_variables"]["CORS_ALLOW_ORIGIN"] = origins
    found = [problem for problem in stages.problems("prod") if "CORS_ALLOW_ORIGIN" in problem]
    assert (found == []) == ok, found


def test_a_redis_endpoint_with_a_password_is_refused(edited_config):
    edited_config["stages"]["dev"]["environment_variables"]["REDIS_ENDPOINT"] = "rediss://:hunter2@h:6379/0"
    assert any("credentials" in problem for problem in stages.problems("dev"))


def test_a_secret_the_policy_does_not_grant_is_refused(edited_config):
    env = edited_config["stages"]["prod"]["environment_variables"]
    env["JWT_PREVIOUS_SECRET_ARN"] = (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:interactions/prod/jwt-old-Zz9"
    )
    found = stages.problems("prod")
    assert any("policy's secrets" in problem for problem in found)


def test_a_policy_granting_more_secrets_than_the_lambda_gets_is_refused(edited_config):
    # The authorizer with the API's policy could read the database secret it never uses.
    edited_config["stages"]["dev"]["lambda_functions"]["jwt_authorizer"]["iam_policy_file"] = (
        "policy-dev.json"
    )
    assert any("jwt_authorizer: the policy's secrets" in problem for problem in stages.problems("dev"))


def test_an_authorizer_given_the_database_secret_is_refused(edited_config):
    del edited_config["stages"]["dev"]["lambda_functions"]["jwt_authorizer"]["environment_variables"]
    edited_config["stages"]["dev"]["lambda_functions"]["jwt_authorizer"]["iam_policy_file"] = (
        "policy-dev.json"
    )
    assert any("never uses the database" in problem for problem in stages.problems("dev"))


@pytest.mark.parametrize("timeout, ok", [(4, False), (10, False), (15, True), (28, True), (29, False)])
def test_the_lambda_timeout_sits_between_the_database_timeouts_and_api_gateways(edited_config, timeout, ok):
    edited_config["stages"]["dev"]["lambda_functions"]["api_handler"]["lambda_timeout"] = timeout
    found = [p for p in stages.problems("dev") if "timeout" in p]
    assert (found == []) is ok, found


def test_a_reserved_concurrency_beyond_the_connection_budget_is_refused(edited_config):
    budget = stages.CONNECTION_BUDGET["dev"]
    too_many = (budget - stages.OPS_CONNECTIONS) // stages.CONNECTIONS_PER_CONTAINER + 1
    edited_config["stages"]["dev"]["lambda_functions"]["api_handler"]["reserved_concurrency"] = too_many
    assert any("exceeds the budget" in problem for problem in stages.problems("dev"))


def test_behind_the_proxy_the_budget_counts_the_proxys_pool_not_the_containers(edited_config, monkeypatch):
    prod = edited_config["stages"]["prod"]["lambda_functions"]
    prod["api_handler"]["reserved_concurrency"] = 1000  # far past 330 / 3 straight to the database
    assert stages.problems("prod") == []
    assert stages.database_connections("prod") == stages.PROXY_POOL["prod"]
    monkeypatch.setitem(stages.PROXY_POOL, "prod", stages.CONNECTION_BUDGET["prod"])
    assert any("the proxy's pool" in problem for problem in stages.problems("prod"))


def _prod_policy() -> tuple[dict, dict]:
    """(prod's policy, its rds-db:connect statement) as a copy to edit."""
    policy = json.loads((stages.CHALICE_DIR / "policy-prod.json").read_text())
    return policy, next(s for s in policy["Statement"] if s["Action"] == ["rds-db:connect"])


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:rds-db:eu-west-1:123456789012:dbuser:*/interactions_app",
        "arn:aws:rds-db:eu-west-1:123456789012:dbuser:prx-0123456789abcdef0/*",
        "arn:aws:rds-db:eu-west-1:123456789012:dbuser:prx-0123456789abcdef0/someone_else",
        "arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-0123456789abcdef0/interactions_app",
    ],
)
def test_iam_authentication_is_granted_on_the_proxys_user_only(edited_config, monkeypatch, resource):
    policy, grant = _prod_policy()
    grant["Resource"] = [resource]
    real = stages.Function.policy
    monkeypatch.setattr(
        stages.Function,
        "policy",
        lambda self: policy if self.policy_file == "policy-prod.json" else real(self),
    )
    assert any("needs rds-db:connect on exactly" in problem for problem in stages.problems("prod"))


def test_an_rds_db_grant_without_iam_authentication_is_refused(edited_config):
    for name in ("api_handler", "retry_invitations"):
        edited_config["stages"]["prod"]["lambda_functions"][name]["environment_variables"][
            "DB_PROXY_AUTH"
        ] = "secret"
        edited_config["stages"]["prod"]["lambda_functions"][name]["environment_variables"][
            "DB_SECRET_ARN"
        ] = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:interactions/prod/jwt-GhI789"
    assert any("DB_PROXY_AUTH is not iam" in problem for problem in stages.problems("prod"))


def test_the_schedule_reaches_the_database_as_the_api_does(edited_config):
    del edited_config["stages"]["prod"]["lambda_functions"]["retry_invitations"]["environment_variables"][
        "DB_PROXY"
    ]
    assert any("must agree on DB_PROXY" in problem for problem in stages.problems("prod"))


def test_an_api_without_reserved_concurrency_is_refused(edited_config):
    del edited_config["stages"]["dev"]["lambda_functions"]["api_handler"]["reserved_concurrency"]
    assert any("reserved_concurrency must be set" in problem for problem in stages.problems("dev"))


def test_a_lambda_outside_the_vpc_is_refused(edited_config):
    del edited_config["stages"]["prod"]["subnet_ids"]
    assert any("subnet_ids" in problem for problem in stages.problems("prod"))


def test_the_throttle_never_bursts_past_the_reserved_concurrency():
    for stage in STAGES:
        limits = stages.throttle(stage)
        assert 0 < limits["burst"] <= stages.function(stage, "api_handler").reserved_concurrency
        assert limits["rate"] >= limits["burst"]


def test_policy_files_are_valid_iam_documents():
    for path in sorted(stages.CHALICE_DIR.glob("policy-*.json")):
        document = json.loads(path.read_text())
        assert document["Version"] == "2012-10-17", path.name
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and statement["Sid"], path.name
            assert set(statement["Action"]) <= stages.ALLOWED_ACTIONS, path.name


def test_the_region_comes_from_the_secret_arns():
    assert stages.region("dev") == "eu-west-1"


def test_the_command_line_check_passes_and_names_the_figures(capsys):
    assert stages.main([]) == 0
    out = capsys.readouterr().out
    assert "reserved concurrency 20, direct -> at most 63 database connections" in out  # (20 + 1) x 3
    assert (
        "reserved concurrency 100, through RDS Proxy" in out
        and "(iam), its pool -> at most 60 database" in out
    )
    assert stages.main(["prod", "--for-deploy"]) == 1


@pytest.mark.parametrize(
    "seconds, ok",
    [
        (0, True),
        (300, True),
        (3600, True),
        (-1, False),
        (3601, False),
        (300.0, False),
        ("300", False),
        (True, False),
        (None, False),
    ],
)
def test_the_authorizer_cache_must_be_0_to_3600_whole_seconds(monkeypatch, seconds, ok):
    monkeypatch.setitem(stages.AUTHORIZER_CACHE_SECONDS, "dev", seconds)
    if seconds is None:
        monkeypatch.delitem(stages.AUTHORIZER_CACHE_SECONDS, "dev")
    found = [p for p in stages.problems("dev") if "AUTHORIZER_CACHE_SECONDS" in p]
    assert (found == []) is ok, found


def test_both_stages_cache_authorizer_results_for_300_seconds():
    assert {stage: stages.AUTHORIZER_CACHE_SECONDS[stage] for stage in STAGES} == {"dev": 300, "prod": 300}


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_snapstart_is_true_or_false_for_every_stage(monkeypatch, value):
    monkeypatch.setitem(stages.SNAPSTART, "prod", value)
    if value is None:
        monkeypatch.delitem(stages.SNAPSTART, "prod")
    assert any("SNAPSTART" in problem for problem in stages.problems("prod"))


def test_a_stage_on_another_architecture_than_the_bundles_wheels_is_refused(edited_config):
    edited_config["stages"]["prod"]["lambda_architecture"] = "arm64"  # Chalice: per stage, not per function
    found = stages.problems("prod")
    assert any("prod/jwt_authorizer: lambda_architecture arm64" in problem for problem in found)
    assert any("prod/api_handler: lambda_architecture arm64" in problem for problem in found)


@pytest.mark.parametrize(
    "properties, ok",
    [
        ({}, True),
        ({"EphemeralStorage": {"Size": 512}}, True),
        ({"EphemeralStorage": {"Size": 513}}, False),
        ({"ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}}, False),
        (
            {
                "FileSystemConfigs": [
                    {
                        "Arn": "arn:aws:elasticfilesystem:eu-west-1:1:access-point/fsap-1",
                        "LocalMountPath": "/mnt/x",
                    }
                ]
            },
            False,
        ),
    ],
)
def test_what_snapstart_cannot_be_combined_with(properties, ok):
    assert (stages.snapstart_conflicts("dev/api_handler", properties) == []) is ok


def test_the_packaging_settings_are_not_chalice_configuration_or_lambda_variables():
    """Chalice ignores keys it does not know, so these must not be looked for in config.json; and
    the Lambdas never see them."""
    text = json.dumps(stages.load_config()).lower()
    assert "snapstart" not in text and "authorizer_cache" not in text
    for stage in STAGES:
        for name in stages.FUNCTIONS:
            assert "AUTHORIZER_CACHE_SECONDS" not in stages.function(stage, name).environment


@pytest.mark.parametrize(
    "variables,expected",
    [
        ({"MAIL_DELIVERY": "directory:/tmp/mail"}, "MAIL_DELIVERY must be ses"),
        ({"MAIL_FROM": ""}, "MAIL_FROM"),
        ({"MAIL_FROM": "Interactions <invitations@elsewhere.example>"}, "ses:SendEmail must be granted on"),
        ({"INVITE_URL": "http://app.example.com/accept"}, "INVITE_URL"),
    ],
)
def test_a_stage_that_would_not_send_invitations_through_ses_from_mail_from_is_refused(
    edited_config, variables, expected
):
    edited_config["stages"]["dev"]["environment_variables"].update(variables)
    assert any(expected in problem for problem in stages.problems("dev"))


def test_the_authorizer_may_not_send_mail(edited_config, monkeypatch):
    original = stages.Function.policy

    def policy(self):
        found = original(self)
        if self.name == "jwt_authorizer":
            found = copy.deepcopy(found)
            found["Statement"].append(
                {
                    "Effect": "Allow",
                    "Action": ["ses:SendEmail"],
                    "Resource": ["arn:aws:ses:eu-west-1:1:identity/x"],
                }
            )
        return found

    monkeypatch.setattr(stages.Function, "policy", policy)
    assert any("sends no mail" in problem for problem in stages.problems("dev"))


def test_the_schedule_needs_a_reserved_concurrency_within_the_connection_budget(edited_config):
    functions = edited_config["stages"]["dev"]["lambda_functions"]
    functions["retry_invitations"].pop("reserved_concurrency")
    assert any("retry_invitations: reserved_concurrency" in p for p in stages.problems("dev"))
    functions["retry_invitations"]["reserved_concurrency"] = 10
    assert any("exceeds the budget" in p for p in stages.problems("dev"))
