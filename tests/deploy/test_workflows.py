"""The GitHub Actions workflows parse, validate against GitHub's workflow schema, and do what the
deployment page (docs/deployment.md) says: PR checks with real PostgreSQL and Redis; main -> package -> dev (migrate, deploy,
smoke) -> approval -> prod; credentials only through the OIDC role."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps_running(job: dict, pattern: str) -> list[int]:
    return [i for i, step in enumerate(job["steps"]) if re.search(pattern, step.get("run", ""))]


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_workflow_matches_githubs_schema(name):
    check = Path(sys.executable).parent / "check-jsonschema"
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = subprocess.run(
            [str(check), "--builtin-schema", schema, str(WORKFLOWS / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_get_lint_and_tests_with_postgres_and_redis_services():
    ci = load("ci.yml")
    assert "pull_request" in ci["on"] and "workflow_call" in ci["on"]
    assert steps_running(ci["jobs"]["lint"], r"ruff check")
    test = ci["jobs"]["test"]
    assert test["services"]["postgres"]["image"].startswith("postgres:")
    assert test["services"]["redis"]["image"].startswith("redis:")
    assert test["env"]["DATABASE_URL"].startswith("postgresql://")
    assert test["env"]["REDIS_URL"].startswith("redis://")
    assert steps_running(test, r"make test")


def test_pull_requests_check_the_generated_clients_with_node_and_the_lock_file():
    job = load("ci.yml")["jobs"]["clients"]
    assert steps_running(job, r"make clients")
    (node,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-node")]
    assert node["with"]["cache-dependency-path"] == "clients/package-lock.json"


def test_main_deploys_dev_then_prod_behind_an_approval():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    rollback = deploy["on"]["workflow_dispatch"]["inputs"]  # redeploy an older commit, schema untouched
    assert "ref" in rollback and rollback["skip_migrations"]["default"] is False
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert jobs["checks"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["package"]["needs"] == "checks"
    assert jobs["package"]["strategy"]["matrix"]["stage"] == ["dev", "prod"]
    assert jobs["release-dev"]["needs"] == "package"
    assert jobs["release-prod"]["needs"] == "release-dev"
    assert jobs["release-dev"]["environment"]["name"] == "dev"
    assert jobs["release-prod"]["environment"]["name"] == "prod"


@pytest.mark.parametrize("job_name, stage", [("release-dev", "dev"), ("release-prod", "prod")])
def test_each_release_migrates_then_deploys_then_smoke_tests(job_name, stage):
    job = load("deploy.yml")["jobs"][job_name]
    (migrate,) = steps_running(job, r"python -m chalicelib\.cli migrate")
    (deploy,) = steps_running(job, rf"deploy/deploy\.sh {stage}\b")
    (smoke,) = steps_running(job, r"scripts/smoke\.py --base-url")
    assert migrate < deploy < smoke
    assert job["steps"][migrate]["env"]["DB_SECRET_ARN"] == "${{ vars.DB_MIGRATION_SECRET_ARN }}"
    assert job["steps"][migrate]["if"] == "${{ !inputs.skip_migrations }}"
    assert "steps.deploy.outputs.url" in job["steps"][smoke]["run"]
    assert all("timeout-minutes" in job["steps"][i] for i in (migrate, deploy, smoke))


def test_aws_credentials_come_only_from_the_oidc_role():
    deploy = load("deploy.yml")
    text = (WORKFLOWS / "deploy.yml").read_text() + (WORKFLOWS / "ci.yml").read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    assert deploy["permissions"] == {"contents": "read"}
    for name, job in deploy["jobs"].items():
        uses_aws = [
            s for s in job.get("steps", []) if s.get("uses", "").startswith("aws-actions/configure-aws")
        ]
        if uses_aws:
            assert job["permissions"]["id-token"] == "write", name
            assert uses_aws[0]["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        else:
            assert "id-token" not in job.get("permissions", {}), name


def test_the_smoke_credentials_are_environment_secrets():
    for job_name in ("release-dev", "release-prod"):
        job = load("deploy.yml")["jobs"][job_name]
        (smoke,) = steps_running(job, r"scripts/smoke\.py")
        assert job["steps"][smoke]["env"] == {
            "SMOKE_USERNAME": "${{ secrets.SMOKE_USERNAME }}",
            "SMOKE_PASSWORD": "${{ secrets.SMOKE_PASSWORD }}",
        }


def test_ci_tests_with_the_project_python_and_installs_the_lambda_runtimes_beside_it():
    """make test runs on PYTHON_VERSION (the last one set up); the Lambda runtime's Python and the
    next runtime's are installed too, so the bundle runs under them (tests/deploy/test_lambda_runtime.py)."""
    from deploy import runtime

    ci = load("ci.yml")
    assert ci["env"]["LAMBDA_PYTHON_VERSION"] == runtime.LAMBDA.version
    assert ci["env"]["NEXT_LAMBDA_PYTHON_VERSION"] == runtime.NEXT.version
    (setup,) = [
        s for s in ci["jobs"]["test"]["steps"] if s.get("uses", "").startswith("actions/setup-python")
    ]
    assert setup["with"]["python-version"].strip().splitlines() == [
        "${{ env.NEXT_LAMBDA_PYTHON_VERSION }}",
        "${{ env.LAMBDA_PYTHON_VERSION }}",
        "${{ env.PYTHON_VERSION }}",
    ]
    assert ci["env"]["PYTHON_VERSION"] == load("deploy.yml")["env"]["PYTHON_VERSION"]


def test_packaging_for_a_deploy_has_the_runtimes_python_for_the_bytecode():
    """deploy/bytecode.py compiles the bundle with python3.12 when one is on PATH: the package job
    sets it up beside the tools' Python."""
    from deploy import runtime

    deploy = load("deploy.yml")
    assert deploy["env"]["LAMBDA_PYTHON_VERSION"] == runtime.PYTHON_VERSION
    (setup,) = [
        s for s in deploy["jobs"]["package"]["steps"] if s.get("uses", "").startswith("actions/setup-python")
    ]
    assert setup["with"]["python-version"].strip().splitlines() == [
        "${{ env.LAMBDA_PYTHON_VERSION }}",
        "${{ env.PYTHON_VERSION }}",
    ]
