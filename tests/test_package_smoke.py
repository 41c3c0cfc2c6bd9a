"""`chalice package` succeeds and the SAM template wires our authorizer: its own Lambda, results
never cached, on every route but the public ones. (Packaging in depth: tests/deploy/.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.endpoint import public_routes

ROOT = Path(__file__).resolve().parent.parent
HTTP_METHODS = {"get", "post", "put", "delete", "patch", "head"}


@pytest.mark.slow
def test_chalice_package_wires_the_authorizer(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "dev", str(out)],
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    authorizer = resources["JwtAuthorizer"]
    assert authorizer["Type"] == "AWS::Serverless::Function"
    assert authorizer["Properties"]["Handler"] == "chalicelib.auth.authorizer.jwt_authorizer"

    api = resources["RestAPI"]["Properties"]["DefinitionBody"]
    definition = api["securityDefinitions"]["jwt_authorizer"]
    assert definition["name"] == "Authorization" and definition["in"] == "header"
    assert definition["x-amazon-apigateway-authorizer"]["type"] == "token"
    assert definition["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 0
    assert "JwtAuthorizer.Arn" in json.dumps(definition["x-amazon-apigateway-authorizer"]["authorizerUri"])

    routes = {
        (path, method.upper()): operation
        for path, operations in api["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
    }
    assert public_routes() <= set(routes)
    for route, operation in routes.items():
        expected = None if route in public_routes() else [{"jwt_authorizer": []}]
        assert operation.get("security") == expected, route
