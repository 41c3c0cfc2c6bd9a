"""Package one stage for deployment: `make package STAGE=dev` (or `python -m deploy.package dev`).

    build/<stage>/cloudformation/  sam.json (SAM template), deployment.zip, merge-template.json
    build/<stage>/terraform/       chalice.tf.json, deployment.zip

Both come from `chalice package`; the CloudFormation one with `--merge-template` adding API Gateway's
own errors in our envelope (deploy/gateway_responses.py), the stage's throttle and the Lambdas' log
groups with their retention. Terraform output takes no merge template, so the same additions are
written into its chalice.tf.json afterwards. (Chalice's own log_retention_in_days is not used: its
Terraform output refuses it, and its SAM output names the API's log group after "${ApiHandler}", a
logical id that does not exist.)

Before packaging, the stage's rules are checked (deploy/stages.py). `chalice package` imports app.py
in a fresh process that sees only the stage's variables from .chalice/config.json (every setting of
the calling shell is removed), needs AWS_DEFAULT_REGION (taken from the stage's ARNs) but no
credentials, and runs pip for Linux wheels: from PyPI, or offline from a wheelhouse:

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
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import stages  # noqa: E402
from deploy.gateway_responses import gateway_responses  # noqa: E402

# Every variable chalicelib/config.py reads: none of the caller's may leak into the packaged app
# (app.py is imported while packaging, and e.g. the preflight CORS headers are taken from it).
APP_VARIABLES = (
    "DATABASE_URL", "DB_SECRET_ARN", "REDIS_URL", "REDIS_ENDPOINT", "JWT_SECRET", "JWT_SECRET_ARN",
    "JWT_PREVIOUS_SECRET", "JWT_PREVIOUS_SECRET_ARN", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_TTL_SECONDS",
    "CORS_ALLOW_ORIGIN", "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT_SECONDS", "LOGIN_RATE_PER_MINUTE",
    "API_RATE_PER_MINUTE", "DB_STATEMENT_TIMEOUT_MS", "DB_TLS", "DB_TLS_CA_FILE",
)
FORMATS = ("cloudformation", "terraform")
PACKAGE_TIMEOUT_S = 900


class PackagingError(RuntimeError):
    pass


def merge_template(stage: str) -> dict[str, Any]:
    """What --merge-template adds to Chalice's SAM template for `stage`."""
    api = stages.function(stage, "api_handler")
    limits = stages.throttle(stage)
    resources: dict[str, Any] = {
        "RestAPI": {"Properties": {
            "DefinitionBody": {
                "x-amazon-apigateway-gateway-responses": gateway_responses(api.settings().cors_allow_origin),
            },
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*",
                                "ThrottlingRateLimit": limits["rate"],
                                "ThrottlingBurstLimit": limits["burst"]}],
        }},
    }
    for function_id in ("APIHandler", "JwtAuthorizer"):
        resources[f"{function_id}LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"},
            "RetentionInDays": stages.LOG_RETENTION_DAYS[stage],
        }}
    return {"Resources": resources}


def add_to_terraform(path: Path, stage: str) -> None:
    """The merge template's additions, written into Chalice's Terraform output."""
    api = stages.function(stage, "api_handler")
    limits = stages.throttle(stage)
    tf = json.loads(path.read_text())
    swagger = json.loads(tf["locals"]["chalice_api_swagger"])
    swagger["x-amazon-apigateway-gateway-responses"] = gateway_responses(api.settings().cors_allow_origin)
    # The deployment's stage_description is md5(swagger): changing the body redeploys the API.
    tf["locals"]["chalice_api_swagger"] = json.dumps(swagger)
    tf["resource"]["aws_api_gateway_method_settings"] = {"rest_api": {
        "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
        "stage_name": "${aws_api_gateway_deployment.rest_api.stage_name}",
        "method_path": "*/*",
        "settings": {"throttling_rate_limit": limits["rate"], "throttling_burst_limit": limits["burst"]},
    }}
    tf["resource"]["aws_cloudwatch_log_group"] = {
        name: {"name": f"/aws/lambda/${{aws_lambda_function.{name}.function_name}}",
               "retention_in_days": stages.LOG_RETENTION_DAYS[stage]}
        for name in stages.FUNCTIONS
    }
    path.write_text(json.dumps(tf, indent=2) + "\n")


def packaging_environment(stage: str, wheelhouse: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    env.setdefault("AWS_DEFAULT_REGION", stages.region(stage))
    if wheelhouse is not None:
        if not any(wheelhouse.glob("*.whl")):
            raise PackagingError(f"no wheels in {wheelhouse}: build it with `make wheelhouse`")
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse.resolve()))
    return env


def chalice_package(stage: str, out: Path, env: dict[str, str], *extra: str) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "package", "--stage", stage, *extra, str(out)]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=PACKAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PackagingError(f"chalice package did not finish within {PACKAGE_TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    if "Could not install dependencies" in result.stdout + result.stderr:
        # Chalice only warns and goes on with an incomplete bundle.
        raise PackagingError(f"chalice package could not get every dependency:\n{result.stdout}{result.stderr}")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def runtime_pins() -> dict[str, str]:
    """requirements.txt as {normalised name: version}."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version.strip()
    return pins


def check_bundle(zip_path: Path) -> None:
    """The bundle holds the app and exactly the pinned runtime dependencies, each at its pin: no
    missing one (Chalice would only warn), no dev tool, no stale cached build."""
    names = zipfile.ZipFile(zip_path).namelist()
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
        raise PackagingError(f"{zip_path}: dependencies differ from requirements.txt; "
                             f"missing or other version: {missing}; not pinned: {extra}")


def package(stage: str, *, out: Path | None = None, formats: tuple[str, ...] = FORMATS,
            wheelhouse: Path | None = None) -> dict[str, Path]:
    """Package `stage`; returns {format: output directory}."""
    found = stages.problems(stage)
    if found:
        raise PackagingError("the stage breaks its rules:\n  " + "\n  ".join(found))
    out = (out or ROOT / "build" / stage).resolve()
    env = packaging_environment(stage, wheelhouse)
    written: dict[str, Path] = {}
    if "cloudformation" in formats:
        target = out / "cloudformation"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        merge = target / "merge-template.json"
        merge.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
        chalice_package(stage, target, env, "--merge-template", str(merge))
        check_bundle(target / "deployment.zip")
        written["cloudformation"] = target
    if "terraform" in formats:
        target = out / "terraform"
        shutil.rmtree(target, ignore_errors=True)
        chalice_package(stage, target, env, "--pkg-format", "terraform")
        add_to_terraform(target / "chalice.tf.json", stage)
        check_bundle(target / "deployment.zip")
        written["terraform"] = target
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package a stage (SAM/CloudFormation and Terraform).")
    parser.add_argument("stage", choices=stages.stage_names())
    parser.add_argument("--out", type=Path, help="output directory (default build/<stage>)")
    parser.add_argument("--format", choices=[*FORMATS, "both"], default="both")
    parser.add_argument("--wheelhouse", type=Path, help="install Linux wheels from this directory only")
    args = parser.parse_args(argv)
    formats = FORMATS if args.format == "both" else (args.format,)
    started = time.perf_counter()
    try:
        written = package(args.stage, out=args.out, formats=formats, wheelhouse=args.wheelhouse)
    except PackagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(stages.describe(args.stage))
    for fmt, target in written.items():
        size = (target / "deployment.zip").stat().st_size / 2**20
        print(f"{fmt}: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} "
              f"(deployment.zip {size:.1f} MiB)")
    print(f"packaged {args.stage} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
