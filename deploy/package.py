"""Package one stage for deployment: `make package STAGE=dev` (or `python -m deploy.package dev`).

    build/<stage>/cloudformation/  sam.json (SAM template), deployment.zip, merge-template.json
    build/<stage>/terraform/       chalice.tf.json, deployment.zip

Both come from `chalice package`; the CloudFormation one with `--merge-template` adding API Gateway's
own errors in our envelope (deploy/gateway_responses.py), the stage's throttle and the Lambdas' log
groups with their retention. Terraform output takes no merge template, so the same additions are
written into its chalice.tf.json afterwards. (Chalice's own log_retention_in_days is not used: its
Terraform output refuses it, and its SAM output names the API's log group after "${ApiHandler}", a
logical id that does not exist.)

The functions run on deploy/runtime.py's runtime (python3.12, x86_64), not on the packaging
interpreter's: the third-party packages are installed for that runtime by deploy/dependencies.py
and given to Chalice as `vendor/` of a copy of the project without requirements.txt; afterwards
both outputs are finished (finish_sam, finish_terraform): the runtime, SnapStart, a version and
the alias `live` published on every deploy with API Gateway's integrations, the authorizer and
the invoke permissions on the alias, and the stage's authorizer result cache.

Before packaging, the stage's rules are checked (deploy/stages.py). `chalice package` imports app.py
in a fresh process that sees only the stage's variables from .chalice/config.json (every setting of
the calling shell is removed) and needs AWS_DEFAULT_REGION (taken from the stage's ARNs) but no
credentials; pip gets the Linux wheels from PyPI, or offline from a wheelhouse:

    python -m deploy.package dev --wheelhouse .devdata/wheelhouse   # = PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR
    make wheelhouse                                                 # builds that directory
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import bytecode, dependencies, runtime, stages  # noqa: E402
from deploy.gateway_responses import gateway_responses, preflights_name_the_origin  # noqa: E402

# Every variable chalicelib/config.py reads: none of the caller's may leak into the packaged app
# (app.py is imported while packaging, and e.g. the preflight CORS headers are taken from it).
APP_VARIABLES = (
    "DATABASE_URL",
    "DB_SECRET_ARN",
    "REDIS_URL",
    "REDIS_ENDPOINT",
    "JWT_SECRET",
    "JWT_SECRET_ARN",
    "JWT_PREVIOUS_SECRET",
    "JWT_PREVIOUS_SECRET_ARN",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_TTL_SECONDS",
    "CORS_ALLOW_ORIGIN",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_SECONDS",
    "LOGIN_RATE_PER_MINUTE",
    "API_RATE_PER_MINUTE",
    "SEARCH_RATE_PER_MINUTE",
    "INVITATION_TTL_SECONDS",
    "AUDIT_MIN_RETENTION_DAYS",
    "OPERATOR_LABEL",
    "MAIL_DELIVERY",
    "MAIL_FROM",
    "INVITE_URL",
    "DB_STATEMENT_TIMEOUT_MS",
    "DB_TLS",
    "DB_TLS_CA_FILE",
    "DB_PROXY",
    "DB_PROXY_AUTH",
    "DB_PROXY_USER",
    "DB_PROXY_DATABASE",
)
FORMATS = ("cloudformation", "terraform")
PACKAGE_TIMEOUT_S = 900
# Chalice's logical ids (SAM) and resource names (Terraform) of the two functions.
SAM_FUNCTIONS = {
    "api_handler": "APIHandler",
    "jwt_authorizer": "JwtAuthorizer",
    "retry_invitations": "RetryInvitations",  # the schedule: CloudWatch Events invokes it, not the API
}
API_SAM_FUNCTIONS = {name: SAM_FUNCTIONS[name] for name in stages.API_FUNCTIONS}


class PackagingError(RuntimeError):
    pass


def merge_template(stage: str) -> dict[str, Any]:
    """What --merge-template adds to Chalice's SAM template for `stage`."""
    api = stages.function(stage, "api_handler")
    limits = stages.throttle(stage)
    resources: dict[str, Any] = {
        "RestAPI": {
            "Properties": {
                "DefinitionBody": {
                    "x-amazon-apigateway-gateway-responses": gateway_responses(
                        api.settings().cors_allow_origin
                    ),
                },
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": limits["rate"],
                        "ThrottlingBurstLimit": limits["burst"],
                    }
                ],
            }
        },
    }
    for function_id in SAM_FUNCTIONS.values():
        resources[f"{function_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"},
                "RetentionInDays": stages.LOG_RETENTION_DAYS[stage],
            },
        }
    return {"Resources": resources}


def finish_sam(path: Path, stage: str, target: runtime.Runtime = runtime.LAMBDA) -> None:
    """Chalice's SAM template, finished for the stage: the runtime, SnapStart, a version and the
    alias published on every deploy, everything API Gateway invokes pointed at the alias, and the
    authorizer's result cache."""
    template = json.loads(path.read_text())
    resources = template["Resources"]
    for logical_id in SAM_FUNCTIONS.values():
        properties = resources[logical_id]["Properties"]
        properties["Runtime"] = target.name
        properties["Architectures"] = [runtime.ARCHITECTURE]
        # SAM publishes a version when the code *or any other property* changes (an environment
        # variable alone, too) and moves the alias to it; old versions are kept (DeletionPolicy Retain).
        properties["AutoPublishAlias"] = stages.ALIAS
        properties["AutoPublishAliasAllProperties"] = True
        if stages.snapstart(stage):
            properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        else:
            properties.pop("SnapStart", None)
    api = resources["RestAPI"]["Properties"]["DefinitionBody"]
    integrations = [
        operation["x-amazon-apigateway-integration"]
        for methods in api["paths"].values()
        for operation in methods.values()
        if operation.get("x-amazon-apigateway-integration", {}).get("type") == "aws_proxy"
    ]
    authorizers = [
        definition["x-amazon-apigateway-authorizer"]
        for definition in api.get("securityDefinitions", {}).values()
        if "x-amazon-apigateway-authorizer" in definition
    ]
    if not integrations or len(authorizers) != 1:
        raise PackagingError(
            f"{path}: expected Lambda integrations and one authorizer, found "
            f"{len(integrations)} and {len(authorizers)}"
        )
    for integration in integrations:
        integration["uri"] = _invoke_alias(integration["uri"], "APIHandler", path)
    (authorizer,) = authorizers
    authorizer["authorizerUri"] = _invoke_alias(authorizer["authorizerUri"], "JwtAuthorizer", path)
    authorizer["authorizerResultTtlInSeconds"] = stages.authorizer_cache_seconds(stage)
    permissions = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Permission"
    }
    for logical_id, properties in permissions.items():
        target = _function_of(properties["FunctionName"])
        if target is None:
            raise PackagingError(
                f"{path}: {logical_id} grants an unknown function {properties['FunctionName']}"
            )
        properties["FunctionName"] = {"Ref": f"{target}.Alias"}
    if sorted(_function_of(p["FunctionName"]) for p in permissions.values()) != sorted(
        API_SAM_FUNCTIONS.values()
    ):
        raise PackagingError(
            f"{path}: expected one invoke permission per function, found {sorted(permissions)}"
        )
    # The schedule invokes the alias too (SAM points a Schedule event at AutoPublishAlias's alias).
    schedule = resources["RetryInvitations"]["Properties"].get("Events", {})
    if [event["Type"] for event in schedule.values()] != ["Schedule"]:
        raise PackagingError(f"{path}: RetryInvitations should have one Schedule event, found {schedule}")
    template["Outputs"].setdefault("JwtAuthorizerName", {"Value": {"Ref": "JwtAuthorizer"}})
    for logical_id in SAM_FUNCTIONS.values():
        template["Outputs"][f"{logical_id}AliasArn"] = {"Value": {"Ref": f"{logical_id}.Alias"}}
    if stages.snapstart(stage):
        found = [
            p
            for name, logical_id in SAM_FUNCTIONS.items()
            for p in stages.snapstart_conflicts(f"{stage}/{name}", resources[logical_id]["Properties"])
        ]
        if found:
            raise PackagingError("\n  ".join([f"{path}: SnapStart conflicts:", *found]))
    preflights_name_the_origin(api, stages.function(stage, "api_handler").settings().cors_allow_origins)
    leftover = [
        ref
        for ref in ("${APIHandler.Arn}", "${JwtAuthorizer.Arn}")
        if ref in json.dumps(resources["RestAPI"])
    ]
    if leftover:
        raise PackagingError(f"{path}: API Gateway still invokes the unqualified function: {leftover}")
    path.write_text(json.dumps(template, indent=2) + "\n")


def _invoke_alias(uri: Any, logical_id: str, path: Path) -> dict[str, Any]:
    """Chalice's `{"Fn::Sub": ".../functions/${X.Arn}/invocations"}` -> the same URI of X's alias.
    The alias goes in through the variable map as `{"Ref": "X.Alias"}` (SAM resolves that and
    cfn-lint knows it; `${X.Alias}` inside the string is resolved by SAM but refused by cfn-lint)."""
    placeholder = f"${{{logical_id}.Arn}}"
    if not (isinstance(uri, dict) and isinstance(uri.get("Fn::Sub"), str) and placeholder in uri["Fn::Sub"]):
        raise PackagingError(f"{path}: unexpected invocation URI for {logical_id}: {uri}")
    return {
        "Fn::Sub": [
            uri["Fn::Sub"].replace(placeholder, "${FunctionAlias}"),
            {"FunctionAlias": {"Ref": f"{logical_id}.Alias"}},
        ]
    }


def _function_of(reference: Any) -> str | None:
    """The function a permission's FunctionName names: `{"Ref": X}`, `{"Fn::GetAtt": [X, "Arn"]}`,
    or already `{"Ref": "X.Alias"}`."""
    if isinstance(reference, dict) and "Ref" in reference:
        name = reference["Ref"].removesuffix(".Alias")
    elif isinstance(reference, dict) and "Fn::GetAtt" in reference and reference["Fn::GetAtt"][1] == "Arn":
        name = reference["Fn::GetAtt"][0]
    else:
        return None
    return name if name in SAM_FUNCTIONS.values() else None


# Chalice pins the AWS provider below 5, which knows no runtime after python3.10 (the python3.11 and
# python3.12 runtimes arrived in 5.x). Below 6: v6 drops aws_api_gateway_deployment.stage_name,
# which Chalice's output uses.
TERRAFORM_AWS_PROVIDER = ">= 5.32.0, < 6"


def finish_terraform(path: Path, stage: str, target: runtime.Runtime = runtime.LAMBDA) -> None:
    """The merge template's additions and finish_sam's changes, written into Chalice's Terraform output."""
    api = stages.function(stage, "api_handler")
    limits = stages.throttle(stage)
    tf = json.loads(path.read_text())
    tf["terraform"]["required_providers"]["aws"]["version"] = TERRAFORM_AWS_PROVIDER
    resources = tf["resource"]
    swagger_text = tf["locals"]["chalice_api_swagger"]
    for name in stages.FUNCTIONS:
        function = resources["aws_lambda_function"][name]
        function["runtime"] = target.name
        function["architectures"] = [runtime.ARCHITECTURE]
        function["publish"] = True  # every change publishes a version; the alias follows it
        if stages.snapstart(stage):
            function["snap_start"] = {"apply_on": "PublishedVersions"}
            conflicts = stages.snapstart_conflicts(
                f"{stage}/{name}",
                {
                    "FileSystemConfigs": function.get("file_system_config"),
                    "EphemeralStorage": {"Size": function.get("ephemeral_storage", {}).get("size", 512)},
                },
            )
            if conflicts or resources.get("aws_lambda_provisioned_concurrency_config"):
                raise PackagingError(f"{path}: SnapStart conflicts: {conflicts or 'provisioned concurrency'}")
        resources.setdefault("aws_lambda_alias", {})[name] = {
            "name": stages.ALIAS,
            "function_name": f"${{aws_lambda_function.{name}.function_name}}",
            "function_version": f"${{aws_lambda_function.{name}.version}}",
        }
        if name not in stages.API_FUNCTIONS:
            continue
        unqualified = f"${{aws_lambda_function.{name}.invoke_arn}}"
        if unqualified not in swagger_text:
            raise PackagingError(f"{path}: the API does not invoke {name} as expected")
        swagger_text = swagger_text.replace(unqualified, f"${{aws_lambda_alias.{name}.invoke_arn}}")
    permissions = resources["aws_lambda_permission"]
    for permission in permissions.values():
        target = re.fullmatch(r"\$\{aws_lambda_function\.(\w+)\.arn\}", permission["function_name"])
        if target is None or target.group(1) not in stages.FUNCTIONS:
            raise PackagingError(
                f"{path}: a permission for an unknown function: {permission['function_name']}"
            )
        permission["qualifier"] = f"${{aws_lambda_alias.{target.group(1)}.name}}"
    for event_target in resources.get("aws_cloudwatch_event_target", {}).values():  # the schedule
        found = re.fullmatch(r"\$\{aws_lambda_function\.(\w+)\.arn\}", event_target["arn"])
        if found is None or found.group(1) not in stages.FUNCTIONS:
            raise PackagingError(f"{path}: a schedule for an unknown function: {event_target['arn']}")
        event_target["arn"] = f"${{aws_lambda_alias.{found.group(1)}.arn}}"
    swagger = json.loads(swagger_text)
    swagger["x-amazon-apigateway-gateway-responses"] = gateway_responses(api.settings().cors_allow_origin)
    preflights_name_the_origin(swagger, api.settings().cors_allow_origins)
    for definition in swagger["securityDefinitions"].values():
        definition["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] = (
            stages.authorizer_cache_seconds(stage)
        )
    # The deployment's stage_description is md5(swagger): changing the body redeploys the API (the
    # alias's invoke ARN does not change between versions, so new code alone does not).
    tf["locals"]["chalice_api_swagger"] = json.dumps(swagger)
    resources["aws_api_gateway_method_settings"] = {
        "rest_api": {
            "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
            "stage_name": "${aws_api_gateway_deployment.rest_api.stage_name}",
            "method_path": "*/*",
            "settings": {"throttling_rate_limit": limits["rate"], "throttling_burst_limit": limits["burst"]},
        }
    }
    resources["aws_cloudwatch_log_group"] = {
        name: {
            "name": f"/aws/lambda/${{aws_lambda_function.{name}.function_name}}",
            "retention_in_days": stages.LOG_RETENTION_DAYS[stage],
        }
        for name in stages.FUNCTIONS
    }
    path.write_text(json.dumps(tf, indent=2) + "\n")


def packaging_environment(stage: str, wheelhouse: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    env.setdefault("AWS_DEFAULT_REGION", stages.region(stage))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no cpython-311 .pyc files into the bundle
    if wheelhouse is not None:
        if not any(wheelhouse.glob("*.whl")):
            raise PackagingError(f"no wheels in {wheelhouse}: build it with `make wheelhouse`")
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse.resolve()))
    return env


def chalice_project(into: Path, site_packages: Path) -> Path:
    """A copy of the project for `chalice package`: app.py, chalicelib/, the stage configuration and
    policies, `vendor/` = the runtime's packages, and no requirements.txt (so Chalice's own pip
    step, which would pick wheels for this interpreter, has nothing to do)."""
    project = into / "project"
    project.mkdir(parents=True)
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    for source in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(source, project / ".chalice" / source.name)
    (project / "vendor").symlink_to(site_packages, target_is_directory=True)
    return project


def chalice_package(stage: str, project: Path, out: Path, env: dict[str, str], *extra: str) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "--project-dir", str(project), "package", "--stage", stage, *extra, str(out)]
    try:
        result = subprocess.run(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PACKAGE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise PackagingError(f"chalice package did not finish within {PACKAGE_TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    if "Could not install dependencies" in result.stdout + result.stderr:
        # Chalice only warns and goes on with an incomplete bundle.
        raise PackagingError(
            f"chalice package could not get every dependency:\n{result.stdout}{result.stderr}"
        )


def _normalise(name: str) -> str:
    return dependencies.normalise(name)


def runtime_pins() -> dict[str, str]:
    """requirements.txt as {normalised name: version}."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version.strip()
    return pins


def wheel_tags(zip_path: Path) -> dict[str, tuple[bool, list[str]]]:
    """{dist-info directory: (Root-Is-Purelib, [Tag, ...])} of every bundled distribution's WHEEL file."""
    found = {}
    with zipfile.ZipFile(zip_path) as bundle:
        for name in bundle.namelist():
            top, _, rest = name.partition("/")
            if top.endswith(".dist-info") and rest == "WHEEL":
                lines = bundle.read(name).decode().splitlines()
                values = [line.partition(":") for line in lines]
                purelib = any(
                    k.strip() == "Root-Is-Purelib" and v.strip().lower() == "true" for k, _, v in values
                )
                found[top] = (purelib, [v.strip() for k, _, v in values if k.strip() == "Tag"])
    return found


def check_bundle(zip_path: Path, target: runtime.Runtime = runtime.LAMBDA) -> None:
    """The bundle holds the app and exactly the pinned runtime dependencies, each at its pin (no
    missing one, as Chalice would only warn; no dev tool; no stale cached build), each built for
    the Lambda runtime (WHEEL tags and extension module names), and nothing that one of them needs
    on that runtime is missing."""
    with zipfile.ZipFile(zip_path) as bundle:
        names = bundle.namelist()
        metadata = [
            bundle.read(n).decode() for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
    for required in ("app.py", "chalicelib/auth/authorizer.py"):
        if required not in names:
            raise PackagingError(f"{zip_path}: {required} is missing")
    bundled = {}
    for top in {n.split("/", 1)[0] for n in names if ".dist-info/" in n}:
        name, _, version = top[: -len(".dist-info")].rpartition("-")
        bundled[_normalise(name)] = version
    if bundled != runtime_pins():
        missing = {k: v for k, v in runtime_pins().items() if bundled.get(k) != v}
        extra = {k: v for k, v in bundled.items() if runtime_pins().get(k) != v}
        raise PackagingError(
            f"{zip_path}: dependencies differ from requirements.txt; "
            f"missing or other version: {missing}; not pinned: {extra}"
        )
    tags = wheel_tags(zip_path)
    wrong = {top: found for top, found in tags.items() if not any(target.tag_fits(t) for t in found[1])}
    no_wheel = sorted({n.split("/", 1)[0] for n in names if ".dist-info/" in n} - set(tags))
    if wrong or no_wheel:
        raise PackagingError(
            f"{zip_path}: not built for {target.name} ({target.abi}, manylinux "
            f"{runtime.ARCHITECTURE}, glibc <= {'.'.join(map(str, runtime.GLIBC))}): "
            f"{wrong or ''} {'without a WHEEL file: ' + str(no_wheel) if no_wheel else ''}"
        )
    modules = [n for n in names if n.endswith(".so") and ".libs/" not in n and not target.extension_fits(n)]
    if modules:
        raise PackagingError(f"{zip_path}: extension modules {target.name} would not import: {modules[:5]}")
    foreign = [n for n in names if n.endswith(".pyc") and f".{target.cache_tag}." not in n.rsplit("/", 1)[-1]]
    if foreign:
        raise PackagingError(f"{zip_path}: holds .pyc files of another interpreter: {foreign[:3]}")
    problems = dependencies.closure_problems(metadata, target)
    if problems:
        raise PackagingError(f"{zip_path}: incomplete for {target.name}:\n  " + "\n  ".join(problems))


def _compile(zip_path: Path, python: str | None) -> None:
    if python is not None:
        try:
            bytecode.compile_bundle(zip_path, python)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            raise PackagingError(f"{zip_path}: compiling its bytecode failed: {exc}") from None


def package(
    stage: str,
    *,
    out: Path | None = None,
    formats: tuple[str, ...] = FORMATS,
    wheelhouse: Path | None = None,
    compile_with: str | None = None,
    target: runtime.Runtime = runtime.LAMBDA,
) -> dict[str, Path]:
    """Package `stage`; returns {format: output directory}. `compile_with`: a Python of the
    runtime's version that adds the bundle's bytecode (deploy/bytecode.py); None ships sources.
    `target`: the runtime the functions run on (another than `runtime.LAMBDA` only in tests)."""
    found = stages.problems(stage)
    if found:
        raise PackagingError("the stage breaks its rules:\n  " + "\n  ".join(found))
    out = (out or ROOT / "build" / stage).resolve()
    env = packaging_environment(stage, wheelhouse)
    try:
        site_packages = dependencies.site_packages(env, target=target)
    except dependencies.DependencyError as exc:
        raise PackagingError(str(exc)) from None
    written: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".chalice-", dir=out) as scratch:
        project = chalice_project(Path(scratch), site_packages)
        if "cloudformation" in formats:
            into = out / "cloudformation"
            shutil.rmtree(into, ignore_errors=True)
            into.mkdir(parents=True)
            merge = into / "merge-template.json"
            merge.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
            chalice_package(stage, project, into, env, "--merge-template", str(merge))
            finish_sam(into / "sam.json", stage, target)
            _compile(into / "deployment.zip", compile_with)
            check_bundle(into / "deployment.zip", target)
            written["cloudformation"] = into
        if "terraform" in formats:
            into = out / "terraform"
            shutil.rmtree(into, ignore_errors=True)
            chalice_package(stage, project, into, env, "--pkg-format", "terraform")
            finish_terraform(into / "chalice.tf.json", stage, target)
            _compile(into / "deployment.zip", compile_with)
            check_bundle(into / "deployment.zip", target)
            written["terraform"] = into
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package a stage (SAM/CloudFormation and Terraform).")
    parser.add_argument("stage", choices=stages.stage_names())
    parser.add_argument("--out", type=Path, help="output directory (default build/<stage>)")
    parser.add_argument("--format", choices=[*FORMATS, "both"], default="both")
    parser.add_argument("--wheelhouse", type=Path, help="install Linux wheels from this directory only")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="ship sources only, even with a python3.12 at hand"
    )
    args = parser.parse_args(argv)
    formats = FORMATS if args.format == "both" else (args.format,)
    started = time.perf_counter()
    python = None if args.no_bytecode else bytecode.interpreter()
    try:
        written = package(
            args.stage, out=args.out, formats=formats, wheelhouse=args.wheelhouse, compile_with=python
        )
    except PackagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(stages.describe(args.stage))
    if python is not None:
        print(f"bytecode: compiled by {python} ({bytecode.CACHE_TAG}, unchecked-hash)")
    elif not args.no_bytecode:
        print(
            f"bytecode: none (no python{runtime.PYTHON_VERSION}: not LAMBDA_PYTHON, not on PATH, not in pyenv): "
            "a cold start "
            "without SnapStart compiles every module it imports"
        )
    for fmt, target in written.items():
        size = (target / "deployment.zip").stat().st_size / 2**20
        print(
            f"{fmt}: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} "
            f"(deployment.zip {size:.1f} MiB)"
        )
    print(f"packaged {args.stage} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
