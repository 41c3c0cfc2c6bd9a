"""The deployed stages as .chalice/config.json describes them, and the rules that keep them sound:
secrets only by ARN, each Lambda able to read exactly the secrets it is given, timeouts nested
inside API Gateway's, a reserved concurrency the database's connection budget can carry (directly,
or the proxy's pool behind RDS Proxy: DB_PROXY), IAM database authentication granted on exactly the
proxy's user, and the packaging settings (SnapStart, the authorizer's result cache) within what AWS allows.

The packaging settings live here, not in .chalice/config.json: Chalice neither knows nor checks
them (it silently ignores a key it does not know, so a `"snapstart": false` there would do
nothing), and they are not environment variables (the Lambdas never read them).

    python -m deploy.stages [STAGE ...] [--for-deploy]

prints each stage's figures and exits non-zero when a rule is broken; `--for-deploy` also refuses
the documented placeholder values (account 123456789012), which are fine for packaging and tests.
The same checks run before every `make package` and in tests/deploy/.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploy import runtime

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"
FUNCTIONS = ("api_handler", "jwt_authorizer", "retry_invitations")
API_FUNCTIONS = ("api_handler", "jwt_authorizer")  # what API Gateway invokes
SCHEDULED = "retry_invitations"  # invitations' queued messages, every few minutes (a Chalice schedule)
SCHEDULED_MAX_TIMEOUT_S = 300

API_GATEWAY_TIMEOUT_S = 29  # REST API integration timeout (the default hard limit)
# chalicelib/db.py: pool_size=1 + max_overflow=2 per container (tests/deploy checks the two agree).
CONNECTIONS_PER_CONTAINER = 3
# Connections each stage's database must accept from the API, beyond RDS's own reserved ones;
# OPS_CONNECTIONS of them are kept for migrations, the CLI and monitoring. A stage straight to the
# database spends CONNECTIONS_PER_CONTAINER of it per container; behind RDS Proxy (DB_PROXY) the
# database sees only the proxy's pool, PROXY_POOL connections (the target group's
# MaxConnectionsPercent of max_connections), however many containers share it.
CONNECTION_BUDGET = {"dev": 75, "prod": 330}
OPS_CONNECTIONS = 10
PROXY_POOL = {"prod": 60}
# API Gateway's stage throttle is derived from the reserved concurrency, assuming requests take
# ~200 ms on average: past it clients get 429 from the gateway instead of Lambda throttling (500).
ASSUMED_REQUEST_SECONDS = 0.2
# CloudWatch log retention. Not Chalice's log_retention_in_days: its Terraform output cannot
# express it, so deploy/package.py adds the log groups to both outputs.
LOG_RETENTION_DAYS = {"dev": 14, "prod": 90}
MIN_API_MEMORY_MB = 512  # argon2id hashes with 64 MiB; Lambda CPU grows with memory

# Lambda SnapStart on both functions (deploy/package.py): each deploy publishes a version, takes a
# snapshot of it after init, and moves the alias ALIAS to it; API Gateway calls only the alias.
# False keeps the versions and the alias, without snapshots. SnapStart rules out provisioned
# concurrency, EFS and more than 512 MB of ephemeral storage (snapstart_conflicts()).
SNAPSTART = {"dev": True, "prod": True}
ALIAS = "live"
SNAPSTART_MAX_EPHEMERAL_MB = 512
# API Gateway's authorizer result cache, seconds per Authorization header (packaging only: it
# becomes authorizerResultTtlInSeconds in both outputs; 0 = every request calls the authorizer).
AUTHORIZER_CACHE_SECONDS = {"dev": 300, "prod": 300}
AUTHORIZER_CACHE_MAX_SECONDS = 3600  # API Gateway's upper limit

# Never in config.json: Chalice copies a stage's variables over the environment (API.md).
FORBIDDEN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "JWT_PREVIOUS_SECRET")
SECRET_VARIABLES = ("JWT_SECRET_ARN", "JWT_PREVIOUS_SECRET_ARN", "DB_SECRET_ARN")
PLACEHOLDER_ACCOUNT = "123456789012"
ALLOWED_ACTIONS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "secretsmanager:GetSecretValue",
    "ses:SendEmail",
    "rds-db:connect",
}
# The variables that choose how the API reaches PostgreSQL (chalicelib/config.py); the functions that
# use the database (api_handler, retry_invitations) must agree on them.
DATABASE_VARIABLES = ("DB_SECRET_ARN", "DB_PROXY", "DB_PROXY_AUTH", "DB_PROXY_USER", "DB_PROXY_DATABASE")


def load_config() -> dict[str, Any]:
    return json.loads((CHALICE_DIR / "config.json").read_text())


def stage_names() -> list[str]:
    return sorted(load_config()["stages"])


@dataclass
class Function:
    """One Lambda of a stage, with Chalice's own merge of top-level, stage and function settings."""

    stage: str
    name: str
    environment: dict[str, str]
    timeout_s: int | None
    memory_mb: int | None
    reserved_concurrency: int | None
    policy_file: str | None
    subnet_ids: list[str]
    security_group_ids: list[str]

    def settings(self) -> Any:
        from chalicelib.config import Settings

        return Settings.from_env(self.environment)

    def policy(self) -> dict[str, Any]:
        name = self.policy_file or f"policy-{self.stage}.json"
        return json.loads((CHALICE_DIR / name).read_text())

    def readable_secrets(self) -> set[str]:
        found: set[str] = set()
        for statement in self.policy()["Statement"]:
            actions = _as_list(statement["Action"])
            if statement.get("Effect") == "Allow" and any(a.startswith("secretsmanager:") for a in actions):
                found.update(_as_list(statement["Resource"]))
        return found

    def secret_arns(self) -> set[str]:
        return {v for k, v in self.environment.items() if k in SECRET_VARIABLES and v}


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def function(stage: str, name: str) -> Function:
    from chalice.config import Config

    config = Config(chalice_stage=stage, function_name=name, config_from_disk=load_config())
    return Function(
        stage=stage,
        name=name,
        environment=dict(config.environment_variables),
        timeout_s=config.lambda_timeout,
        memory_mb=config.lambda_memory_size,
        reserved_concurrency=config.reserved_concurrency,
        policy_file=config.iam_policy_file,
        subnet_ids=list(config.subnet_ids or []),
        security_group_ids=list(config.security_group_ids or []),
    )


def snapstart(stage: str) -> bool:
    return SNAPSTART[stage]


def authorizer_cache_seconds(stage: str) -> int:
    return AUTHORIZER_CACHE_SECONDS[stage]


def snapstart_conflicts(where: str, properties: dict[str, Any]) -> list[str]:
    """What in a packaged function's properties (CloudFormation names) SnapStart does not allow."""
    found = []
    if properties.get("ProvisionedConcurrencyConfig"):
        found.append(f"{where}: SnapStart cannot be combined with provisioned concurrency")
    if properties.get("FileSystemConfigs"):
        found.append(f"{where}: SnapStart cannot be combined with an EFS file system")
    size = (properties.get("EphemeralStorage") or {}).get("Size", SNAPSTART_MAX_EPHEMERAL_MB)
    if not isinstance(size, int) or size > SNAPSTART_MAX_EPHEMERAL_MB:
        found.append(
            f"{where}: SnapStart allows at most {SNAPSTART_MAX_EPHEMERAL_MB} MB of ephemeral "
            f"storage, not {size}"
        )
    return found


def _packaging_problems(stage: str) -> list[str]:
    found = []
    if stage not in SNAPSTART:
        found.append(f"{stage}: no SNAPSTART in deploy/stages.py")
    elif not isinstance(SNAPSTART[stage], bool):
        found.append(f"{stage}: SNAPSTART must be True or False, not {SNAPSTART[stage]!r}")
    seconds = AUTHORIZER_CACHE_SECONDS.get(stage)
    if seconds is None:
        found.append(f"{stage}: no AUTHORIZER_CACHE_SECONDS in deploy/stages.py")
    elif (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 0 <= seconds <= AUTHORIZER_CACHE_MAX_SECONDS
    ):
        found.append(
            f"{stage}: AUTHORIZER_CACHE_SECONDS must be a whole number of seconds from 0 to "
            f"{AUTHORIZER_CACHE_MAX_SECONDS}, not {seconds!r}"
        )
    from chalice.config import Config

    for name in FUNCTIONS:
        architecture = Config(
            chalice_stage=stage, function_name=name, config_from_disk=load_config()
        ).lambda_architecture
        if architecture != runtime.ARCHITECTURE:
            found.append(
                f"{stage}/{name}: lambda_architecture {architecture} — the bundle's wheels are "
                f"built for {runtime.ARCHITECTURE} (deploy/runtime.py)"
            )
    return found


def ses_identity_arn(stage: str, mail_from: str) -> str:
    """The SES identity MAIL_FROM's domain is verified as, in the stage's region and account."""
    from email.utils import parseaddr

    domain = parseaddr(mail_from)[1].rpartition("@")[2].lower()
    account = next(iter(function(stage, "api_handler").secret_arns())).split(":")[4]
    return f"arn:aws:ses:{region(stage)}:{account}:identity/{domain}"


def _mail_problems(stage: str, fn: Function, *, sends: bool) -> list[str]:
    """A function that sends invitations goes through SES from MAIL_FROM, with the permission to
    send scoped to that identity; one that does not may not send at all."""
    where = f"{stage}/{fn.name}"
    granted = {
        resource
        for statement in fn.policy()["Statement"]
        if statement.get("Effect") == "Allow"
        and any(a.startswith("ses:") for a in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
    }
    if not sends:
        return [f"{where}: it sends no mail; give it no SES permission"] if granted else []
    found = []
    if fn.environment.get("MAIL_DELIVERY", "ses") != "ses":
        found.append(f"{where}: MAIL_DELIVERY must be ses in a packaged stage (directory: is for local runs)")
    mail_from = fn.environment.get("MAIL_FROM", "")
    url = fn.environment.get("INVITE_URL", "")
    if "@" not in mail_from:
        found.append(f"{where}: MAIL_FROM (the invitations' sender) is not set")
    elif granted != {ses_identity_arn(stage, mail_from)}:
        found.append(
            f"{where}: ses:SendEmail must be granted on MAIL_FROM's identity "
            f"{ses_identity_arn(stage, mail_from)} only, not {sorted(granted)}"
        )
    if not url.startswith("https://") or url.count("{token}") != 1:
        found.append(f"{where}: INVITE_URL must be the frontend's https:// accept page with {{token}} once")
    return found


def throttle(stage: str) -> dict[str, int]:
    """API Gateway's stage-wide throttle: a burst no larger than the Lambdas that can run at once."""
    concurrency = function(stage, "api_handler").reserved_concurrency or 0
    return {"rate": int(concurrency / ASSUMED_REQUEST_SECONDS), "burst": concurrency}


def region(stage: str) -> str:
    """The stage's AWS region, read from its secret ARNs (all in one region and account)."""
    arns = set().union(*(function(stage, name).secret_arns() for name in FUNCTIONS))
    places = {tuple(arn.split(":")[3:5]) for arn in arns}
    if len(places) != 1:
        raise ValueError(f"stage {stage}: secret ARNs span several regions/accounts: {sorted(places)}")
    return places.pop()[0]


def problems(stage: str, *, for_deploy: bool = False) -> list[str]:
    """Every rule the stage breaks (empty when it is sound)."""
    from chalicelib.config import ConfigError

    found: list[str] = _packaging_problems(stage)
    api, authorizer = function(stage, "api_handler"), function(stage, "jwt_authorizer")
    scheduled = function(stage, SCHEDULED)
    for fn in (api, authorizer, scheduled):
        where = f"{stage}/{fn.name}"
        for name in FORBIDDEN_VARIABLES:
            if name in fn.environment:
                found.append(
                    f"{where}: {name} must not be in config.json (use the *_ARN / REDIS_ENDPOINT form)"
                )
        try:
            settings = fn.settings()
        except ConfigError as exc:
            found.append(f"{where}: {exc}")
            continue
        if not settings.jwt_secret_arn:
            found.append(f"{where}: JWT_SECRET_ARN is not set")
        if not (settings.redis_url or "").startswith(("redis://", "rediss://")):
            found.append(f"{where}: REDIS_ENDPOINT must be a redis:// or rediss:// URL")
        if not fn.subnet_ids or not fn.security_group_ids:
            found.append(f"{where}: needs subnet_ids and security_group_ids (Redis lives in the VPC)")
        if fn is scheduled:
            if fn.timeout_s is None or not 0 < fn.timeout_s <= SCHEDULED_MAX_TIMEOUT_S:
                found.append(f"{where}: lambda_timeout {fn.timeout_s} must be 1-{SCHEDULED_MAX_TIMEOUT_S} s")
        elif fn.timeout_s is None or not 0 < fn.timeout_s < API_GATEWAY_TIMEOUT_S:
            found.append(
                f"{where}: lambda_timeout {fn.timeout_s} must be below API Gateway's {API_GATEWAY_TIMEOUT_S} s"
            )
        # Least privilege both ways: every secret it is given is readable, nothing else is.
        readable, given = fn.readable_secrets(), fn.secret_arns()
        if readable != given:
            found.append(
                f"{where}: the policy's secrets {sorted(readable)} differ from the ARNs in its "
                f"environment {sorted(given)}"
            )
        for statement in fn.policy()["Statement"]:
            extra = set(_as_list(statement["Action"])) - ALLOWED_ACTIONS
            if extra:
                found.append(f"{where}: unexpected actions in the policy: {sorted(extra)}")
            if any(
                a.startswith(("secretsmanager:", "logs:")) for a in _as_list(statement["Action"])
            ) and "*" in _as_list(statement["Resource"]):
                found.append(f"{where}: secrets and logs must be granted on exact ARNs, not '*'")
        if for_deploy and any(PLACEHOLDER_ACCOUNT in arn for arn in given):
            found.append(f"{where}: the secret ARNs are still the documented placeholders")
        found += _mail_problems(stage, fn, sends=fn is not authorizer)
    try:
        api_settings = api.settings()
        api_settings.validate()
    except ConfigError as exc:
        found.append(f"{stage}/api_handler: {exc}")
        return found
    if not api_settings.db_secret_arn and not api_settings.uses_proxy_iam:
        found.append(f"{stage}/api_handler: DB_SECRET_ARN is not set (or DB_PROXY_AUTH=iam)")
    found += _proxy_problems(stage, api, scheduled)
    found.extend(
        f"{stage}/api_handler: {problem}" for problem in cors_problems(api_settings.cors_allow_origins)
    )
    if authorizer.environment.get("DB_SECRET_ARN"):
        found.append(
            f"{stage}/jwt_authorizer: the authorizer never uses the database; give it no DB_SECRET_ARN"
        )
    # statement_timeout < pg8000's read timeout (statement + a margin, see db.py) < Lambda < 29 s.
    statement_s = api_settings.db_statement_timeout_ms / 1000
    socket_s = api_settings.db_read_timeout_s
    if api.timeout_s is not None and not statement_s < socket_s < api.timeout_s:
        found.append(
            f"{stage}/api_handler: needs statement_timeout {statement_s} s < database socket "
            f"timeout {socket_s} s < lambda_timeout {api.timeout_s} s"
        )
    if (api.memory_mb or 0) < MIN_API_MEMORY_MB:
        found.append(
            f"{stage}/api_handler: lambda_memory_size {api.memory_mb} is below {MIN_API_MEMORY_MB} MB"
        )
    if authorizer.reserved_concurrency is not None:
        found.append(
            f"{stage}/jwt_authorizer: no reserved concurrency (it holds no database connection; "
            "capping it would only turn load into authorizer failures)"
        )
    concurrency = api.reserved_concurrency
    budget = CONNECTION_BUDGET.get(stage)
    if not scheduled.reserved_concurrency:
        found.append(f"{stage}/{SCHEDULED}: reserved_concurrency must be set (it holds database connections)")
    if not concurrency:
        found.append(f"{stage}/api_handler: reserved_concurrency must be set (it caps database connections)")
    elif budget is None:
        found.append(f"{stage}: no CONNECTION_BUDGET in deploy/stages.py")
    elif api_settings.uses_db_proxy:
        pool = PROXY_POOL.get(stage)
        if pool is None:
            found.append(f"{stage}: behind RDS Proxy, but no PROXY_POOL in deploy/stages.py")
        elif pool + OPS_CONNECTIONS > budget:
            found.append(
                f"{stage}: the proxy's pool of {pool} + {OPS_CONNECTIONS} for operations exceeds the budget of {budget}"
            )
    elif (
        concurrency + (scheduled.reserved_concurrency or 0)
    ) * CONNECTIONS_PER_CONTAINER + OPS_CONNECTIONS > budget:
        found.append(
            f"{stage}/api_handler: {concurrency} containers (+{scheduled.reserved_concurrency} of {SCHEDULED}) "
            f"x {CONNECTIONS_PER_CONTAINER} connections + {OPS_CONNECTIONS} for operations exceeds the "
            f"budget of {budget}"
        )
    if stage not in LOG_RETENTION_DAYS:
        found.append(f"{stage}: no LOG_RETENTION_DAYS in deploy/stages.py")
    try:
        region(stage)
    except ValueError as exc:
        found.append(str(exc))
    return found


def database_connections(stage: str) -> int:
    """The most connections the stage's API can open to PostgreSQL itself: its containers'
    (reserved concurrency x CONNECTIONS_PER_CONTAINER, the schedule's included) straight to the
    database, or the proxy's pool behind RDS Proxy."""
    api, scheduled = function(stage, "api_handler"), function(stage, SCHEDULED)
    if api.settings().uses_db_proxy:
        return PROXY_POOL[stage]
    return (
        (api.reserved_concurrency or 0) + (scheduled.reserved_concurrency or 0)
    ) * CONNECTIONS_PER_CONTAINER


def _proxy_problems(stage: str, api: Function, scheduled: Function) -> list[str]:
    """Both database functions reach PostgreSQL the same way; with IAM authentication each may
    `rds-db:connect` as DB_PROXY_USER at one proxy (`dbuser:prx-<id>/<user>`), and without it none
    may."""
    found = []
    for name in DATABASE_VARIABLES:
        if api.environment.get(name, "") != scheduled.environment.get(name, ""):
            found.append(f"{stage}: api_handler and {SCHEDULED} must agree on {name}")
    settings = api.settings()
    for fn in (api, scheduled):
        granted = sorted(
            resource
            for statement in fn.policy()["Statement"]
            if statement.get("Effect") == "Allow" and "rds-db:connect" in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])
        )
        where = f"{stage}/{fn.name}"
        if not settings.uses_proxy_iam:
            if granted:
                found.append(f"{where}: rds-db:connect is granted but DB_PROXY_AUTH is not iam")
            continue
        prefix = f"arn:aws:rds-db:{region(stage)}:{_account(stage)}:dbuser:prx-"
        suffix = f"/{settings.db_proxy_user}"
        if len(granted) != 1 or not (
            granted[0].startswith(prefix) and granted[0].endswith(suffix) and "*" not in granted[0]
        ):
            found.append(
                f"{where}: DB_PROXY_AUTH=iam needs rds-db:connect on exactly "
                f"{prefix}<proxy id>{suffix}, not {granted}"
            )
    return found


def _account(stage: str) -> str:
    return next(iter(function(stage, "api_handler").secret_arns())).split(":")[4]


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def cors_problems(origins: tuple[str, ...]) -> list[str]:
    """A deployed stage names its frontends (never `*`), each served over https but for a
    developer's own machine (a page on plain http can be rewritten by anyone on the network, and
    then call the API with its user's token). Several are allowed: docs/deployment.md says what the
    gateway's own answers do then."""
    if origins == ("*",):
        return ["CORS_ALLOW_ORIGIN '*' lets every site call the API: name the frontend origins"]
    return [
        f"CORS_ALLOW_ORIGIN {origin} is plain http: only https, or http on localhost, for a deployed stage"
        for origin in origins
        if origin.startswith("http://") and urlsplit(origin).hostname not in LOOPBACK_HOSTS
    ]


def describe(stage: str) -> str:
    api, authorizer = function(stage, "api_handler"), function(stage, "jwt_authorizer")
    settings = api.settings()
    concurrency = api.reserved_concurrency or 0
    limits = throttle(stage)
    path = (
        f"through RDS Proxy {settings.db_proxy} ({settings.db_proxy_auth}), its pool"
        if settings.uses_db_proxy
        else "direct"
    )
    return (
        f"{stage}: region {region(stage)}; api_handler {api.memory_mb} MB, {api.timeout_s} s, "
        f"reserved concurrency {concurrency}, {path} -> at most {database_connections(stage)} "
        f"database connections (+{OPS_CONNECTIONS} operations, budget {CONNECTION_BUDGET.get(stage)}); "
        f"statement_timeout {settings.db_statement_timeout_ms} ms; jwt_authorizer {authorizer.memory_mb} MB, "
        f"{authorizer.timeout_s} s; gateway throttle {limits['rate']} req/s, burst {limits['burst']}; "
        f"CORS origins {', '.join(settings.cors_allow_origins)} (Gateway Responses: {settings.cors_allow_origin}); "
        f"{runtime.RUNTIME} {runtime.ARCHITECTURE}, "
        f"SnapStart {'on' if snapstart(stage) else 'off'} (alias {ALIAS}); "
        f"authorizer cache {authorizer_cache_seconds(stage)} s; {SCHEDULED} {function(stage, SCHEDULED).timeout_s} s "
        f"(scheduled), invitations from {settings.mail_from} via SES"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the deployed stages in .chalice/config.json.")
    parser.add_argument("stages", nargs="*", help="default: every stage")
    parser.add_argument("--for-deploy", action="store_true", help="also refuse placeholder values")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    failed = False
    for stage in args.stages or stage_names():
        if stage not in stage_names():
            print(f"no stage {stage!r} in .chalice/config.json", file=sys.stderr)
            return 2
        found = problems(stage, for_deploy=args.for_deploy)
        for problem in found:
            print(f"error: {problem}", file=sys.stderr)
        failed = failed or bool(found)
        if not found:
            print(describe(stage))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
