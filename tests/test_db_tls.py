"""TLS to PostgreSQL: off for local URLs, verified by default for the deployed secret, never a
silent fall-back to plain text."""

from __future__ import annotations

import os
import ssl

import pytest

from chalicelib import db
from chalicelib.config import ConfigError, Settings

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"


def _settings(**env: str) -> Settings:
    return Settings.from_env({"JWT_SECRET": "k" * 40, "REDIS_URL": "redis://127.0.0.1:6379/0", **env})


def test_a_database_url_connects_without_tls_unless_asked():
    settings = _settings(DATABASE_URL="postgresql://u@127.0.0.1/db")
    assert settings.db_tls == "disable"
    assert settings.db_ssl_context() is None


def test_the_deployed_database_secret_defaults_to_verified_tls():
    context = _settings(DB_SECRET_ARN=ARN).db_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_require_encrypts_without_checking_the_certificate():
    context = _settings(DATABASE_URL="postgresql://u@h/db", DB_TLS="require").db_ssl_context()
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


def test_an_unknown_tls_mode_stops_start_up():
    with pytest.raises(ConfigError, match="DB_TLS"):
        _settings(DATABASE_URL="postgresql://u@h/db", DB_TLS="prefer")


def test_the_engine_hands_the_tls_context_to_the_driver():
    args = db._connect_args(_settings(DB_SECRET_ARN=ARN, DB_TLS="require"))
    assert isinstance(args["ssl_context"], ssl.SSLContext)
    # disable is no TLS at all: not pg8000's default (None), which tries TLS on every connect
    assert db._connect_args(_settings(DATABASE_URL="postgresql://u@h/db"))["ssl_context"] is False


def test_a_server_that_refuses_tls_is_unavailable_not_plain_text(client, reconfigure):
    # The test server does not offer TLS (a unix socket never does): with TLS required the
    # connection must fail, and the API answers 503 naming the database.
    reconfigure(DB_TLS="require", DATABASE_URL=os.environ["DATABASE_URL"])
    response = client.http.get("/api/health")
    assert response.status_code == 503
    assert response.json_body["error"]["details"] == [{"field": "database", "message": "unavailable"}]
