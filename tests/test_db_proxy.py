"""Deployed through RDS Proxy (DB_PROXY): the API connects to the proxy's endpoint, signing in with
the database secret's user and password (DB_PROXY_AUTH=secret) or with an IAM token as
DB_PROXY_USER (iam). A PgBouncer in transaction mode stands in for the proxy (devtools/pooler.py)."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import make_url

from chalicelib import config, db
from chalicelib.config import ConfigError, Settings
from devtools.pooler import Pooler
from tests import environment


@pytest.fixture
def proxy(tmp_path):
    """A stand-in for RDS Proxy in front of the test database's server (trust authentication)."""
    url = make_url(environment.configure()["TEST_DIRECT_DATABASE_URL"])
    sock = url.query.get("unix_sock")
    pooler = Pooler(
        directory=tmp_path / "proxy",
        upstream_unix=sock if isinstance(sock, str) else None,
        upstream=None if sock else (url.host or "127.0.0.1", url.port or 5432),
        user=url.username or "postgres",
        pool_size=2,
    ).start()
    yield pooler
    pooler.stop()
    pooler.remove_files()


@pytest.fixture
def secretsmanager():
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws

    with mock_aws():
        config.reset_settings()
        yield boto3.client("secretsmanager", region_name=os.environ["AWS_DEFAULT_REGION"])
    config.reset_settings()


def _served_through(client, proxy) -> None:
    response = client.http.get("/api/health")
    assert response.status_code == 200, response.json_body
    assert proxy.server_connections(environment.TEST_DATABASE) >= 1  # the proxy carried it


def test_with_the_secret_the_api_connects_to_the_proxy_not_the_secrets_host(
    client, proxy, secretsmanager, reconfigure
):
    secret = {"host": "db.invalid", "port": 5432, "username": proxy.user, "password": "pw"}
    arn = secretsmanager.create_secret(
        Name="db", SecretString=json.dumps({**secret, "dbname": environment.TEST_DATABASE})
    )["ARN"]
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn, DB_PROXY=f"127.0.0.1:{proxy.port}", DB_TLS="disable")

    assert (
        config.get_settings()
        .resolved_database_url()
        .endswith(f"@127.0.0.1:{proxy.port}/{environment.TEST_DATABASE}")
    )
    _served_through(client, proxy)
    db.reset_engine()


def test_with_iam_each_connect_signs_in_with_a_token_and_reads_no_secret(
    client, proxy, reconfigure, monkeypatch
):
    signed = []
    real = db.iam_token

    def spy(settings):
        token = real(settings)
        signed.append(token)
        return token

    monkeypatch.setattr(db, "iam_token", spy)
    monkeypatch.setattr(config, "fetch_secret", lambda arn: pytest.fail(f"fetched {arn}"))
    reconfigure(
        DATABASE_URL=None,
        DB_SECRET_ARN=None,
        DB_PROXY=f"127.0.0.1:{proxy.port}",
        DB_PROXY_AUTH="iam",
        DB_PROXY_USER=proxy.user,
        DB_PROXY_DATABASE=environment.TEST_DATABASE,
        DB_TLS="disable",
    )
    db._iam_token.clear()

    _served_through(client, proxy)

    assert len(signed) == 1
    token = urlsplit("https://" + signed[0])
    query = parse_qs(token.query)
    assert token.hostname == "127.0.0.1" and token.port == proxy.port
    assert query["Action"] == ["connect"] and query["DBUser"] == [proxy.user]
    assert "X-Amz-Signature" in query
    db.reset_engine()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_PROXY": "proxy.example:notaport"}, "DB_PROXY must be the proxy's endpoint"),
        ({"DB_PROXY": "user@proxy.example"}, "DB_PROXY must be the proxy's endpoint"),
        ({"DB_PROXY": "proxy.example", "DB_PROXY_AUTH": "password"}, "DB_PROXY_AUTH must be one of"),
    ],
)
def test_a_malformed_proxy_setting_stops_start_up(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_iam_needs_a_user_and_a_database():
    settings = Settings.from_env(
        {
            "DB_PROXY": "proxy.example",
            "DB_PROXY_AUTH": "iam",
            "JWT_SECRET": "k" * 40,
            "REDIS_URL": "redis://r/0",
        }
    )
    with pytest.raises(ConfigError, match="DB_PROXY_USER and DB_PROXY_DATABASE"):
        settings.validate()


def test_through_a_proxy_tls_is_verified_by_default_and_database_url_wins():
    proxied = Settings.from_env({"DB_PROXY": "proxy.example:6432", "DB_SECRET_ARN": "arn:x"})
    assert proxied.db_tls == "verify-full" and proxied.proxy_address() == ("proxy.example", 6432)
    local = Settings.from_env({"DB_PROXY": "proxy.example", "DATABASE_URL": "postgresql://u@h/d"})
    assert not local.uses_db_proxy and local.resolved_database_url() == "postgresql+pg8000://u@h/d"


def test_with_iam_and_no_aws_credentials_a_request_is_a_503(client, reconfigure):
    """Signing the token needs the function's credentials and region: without them (a local run
    configured for the proxy, a role gone) the database is unavailable, a 503 and not a 500."""
    reconfigure(
        DATABASE_URL=None,
        DB_SECRET_ARN=None,
        DB_PROXY="127.0.0.1:1",
        DB_PROXY_AUTH="iam",
        DB_PROXY_USER="interactions_app",
        DB_PROXY_DATABASE=environment.TEST_DATABASE,
        DB_TLS="disable",
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    db._iam_token.clear()

    response = client.http.post(
        "/api/auth/login",
        body=json.dumps({"username": "jdoe", "password": "correct horse battery staple"}),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 503, response.json_body
    assert response.json_body["error"]["code"] == "SERVICE_UNAVAILABLE"
    db.reset_engine()
