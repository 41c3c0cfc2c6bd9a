"""The authorizer Lambda's cold start stays light: its handler module loads neither the database
layer (SQLAlchemy, pg8000), nor validation (pydantic), nor password hashing (argon2), nor Redis (its verdict depends on the token alone), nor the AWS SDK
(boto3) when no secret ARN is configured. Checked in a fresh interpreter, with a real token.
(The API Lambda, which imports app.py, loads all of them at init on purpose.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import login, make_site, make_user

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["sqlalchemy", "pg8000", "pydantic", "argon2", "boto3", "botocore", "redis"]

_CHILD = """
import json, os, sys
__import__(os.environ["GUARD_MODULE"])
from chalicelib.auth.authorizer import jwt_authorizer
event = {"type": "TOKEN", "authorizationToken": "Bearer " + os.environ["GUARD_TOKEN"],
         "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/api/GET/api/interactions"}
result = jwt_authorizer(event, None)
print(json.dumps({"auth": result["context"]["auth"],
                  "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _verify_in_fresh_process(module: str, token: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_ARN")}
    env.update(GUARD_MODULE=module, GUARD_TOKEN=token)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def token(client):
    site_id = make_site("Marketing")
    make_user("jdoe", sites={site_id: "editor"})
    return login(client)["token"]


def test_verifying_a_token_loads_no_database_validation_hashing_or_aws_library(token):
    outcome = _verify_in_fresh_process("chalicelib.auth.authorizer", token)

    assert outcome["auth"] == "ok"
    assert [name for name in FORBIDDEN if name in outcome["loaded"]] == []
