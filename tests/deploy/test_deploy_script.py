"""deploy/deploy.sh with a stand-in `aws` command that records its calls (no AWS account here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"

FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "$AWS_CALLS"
case "$1 $2" in
  "cloudformation package")
    while [ $# -gt 0 ]; do
      if [ "$1" = "--output-template-file" ]; then echo "packaged" > "$2"; fi
      shift
    done ;;
  "cloudformation describe-stacks") echo "URL" ;;
esac
""".replace("URL", URL)


def project_copy(tmp_path: Path, *, real_account: bool) -> Path:
    """The files deploy.sh needs, with the placeholder account swapped for a real-looking one."""
    project = tmp_path / "project"
    for name in ("deploy", "chalicelib", ".chalice"):
        shutil.copytree(
            ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "deployments")
        )
    if real_account:
        for path in (project / ".chalice").glob("*.json"):
            path.write_text(path.read_text().replace("123456789012", "210987654321"))
    package_dir = project / "build" / "dev" / "cloudformation"
    package_dir.mkdir(parents=True)
    (package_dir / "sam.json").write_text(json.dumps({"Resources": {}}))
    return project


def run_deploy(
    project: Path, tmp_path: Path, **env_extra: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    calls = tmp_path / "aws-calls.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ARTIFACT_"))}
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        AWS_CALLS=str(calls),
        PYTHON=sys.executable,
        PYTHONPATH=str(project),
        **env_extra,
    )
    result = subprocess.run(
        ["bash", str(project / "deploy" / "deploy.sh"), "dev"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_packages_deploys_and_reports_the_url(tmp_path):
    project = project_copy(tmp_path, real_account=True)
    output = tmp_path / "github-output"
    result, calls = run_deploy(project, tmp_path, ARTIFACT_BUCKET="my-artifacts", GITHUB_OUTPUT=str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == URL.rstrip("/")
    assert output.read_text() == f"url={URL.rstrip('/')}\n"
    package, deploy, describe = calls
    assert package.startswith("cloudformation package --region eu-west-1 ")
    assert "--s3-bucket my-artifacts --s3-prefix interactions-api/dev" in package
    assert deploy.startswith("cloudformation deploy --region eu-west-1 ")
    assert "--stack-name interactions-api-dev" in deploy
    assert "--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" in deploy
    assert "--no-fail-on-empty-changeset" in deploy
    assert describe.startswith(
        "cloudformation describe-stacks --region eu-west-1 --stack-name interactions-api-dev"
    )


def test_refuses_the_documented_placeholders_before_calling_aws(tmp_path):
    project = project_copy(tmp_path, real_account=False)
    result, calls = run_deploy(project, tmp_path, ARTIFACT_BUCKET="my-artifacts")
    assert result.returncode != 0
    assert "placeholders" in result.stderr
    assert calls == []


@pytest.mark.parametrize("missing", ["ARTIFACT_BUCKET", "package"])
def test_refuses_without_a_bucket_or_a_package(tmp_path, missing):
    project = project_copy(tmp_path, real_account=True)
    env = {"ARTIFACT_BUCKET": "my-artifacts"}
    if missing == "ARTIFACT_BUCKET":
        env = {}
    else:
        shutil.rmtree(project / "build")
    result, calls = run_deploy(project, tmp_path, **env)
    assert result.returncode != 0
    assert calls == []
