"""Settings: defaults, start-up refusals, and secrets from Secrets Manager (moto), read lazily,
cached per container, and the database secret fetched again when PostgreSQL refuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chalicelib import config, db
from chalicelib.auth import tokens
from chalicelib.config import ConfigError, Settings
from tests import environment
from tests.factories import auth, login, make_site, make_user

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 48


# --- defaults and validation ----------------------------------------------------------------


def test_defaults_are_the_contracts():
    settings = Settings.from_env({})

    assert (
        settings.login_max_failures,
        settings.login_lockout_seconds,
        settings.login_rate_per_minute,
        settings.api_rate_per_minute,
    ) == (5, 900, 20, 600)
    assert settings.jwt_ttl_seconds == 86400
    assert settings.jwt_issuer == "interactions-local" and settings.jwt_audience == "interactions-api-local"


def test_values_come_from_the_environment():
    settings = Settings.from_env(
        {
            "LOGIN_MAX_FAILURES": "3",
            "LOGIN_LOCKOUT_SECONDS": "60",
            "LOGIN_RATE_PER_MINUTE": "7",
            "API_RATE_PER_MINUTE": "9",
            "JWT_TTL_SECONDS": "3600",
            "JWT_ISSUER": " iss ",
            "JWT_AUDIENCE": "aud",
            "CORS_ALLOW_ORIGIN": "https://x.example",
        }
    )

    assert (
        settings.login_max_failures,
        settings.login_lockout_seconds,
        settings.login_rate_per_minute,
        settings.api_rate_per_minute,
        settings.jwt_ttl_seconds,
    ) == (3, 60, 7, 9, 3600)
    assert (settings.jwt_issuer, settings.jwt_audience) == ("iss", "aud")
    assert settings.cors_allow_origin == "https://x.example"


@pytest.mark.parametrize(
    "name,value",
    [
        ("LOGIN_MAX_FAILURES", "five"),
        ("LOGIN_MAX_FAILURES", "0"),
        ("API_RATE_PER_MINUTE", "-1"),
        ("JWT_TTL_SECONDS", "59"),
        ("LOGIN_RATE_PER_MINUTE", "1.5"),
    ],
)
def test_a_bad_number_is_refused_with_its_name(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


BASE = {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "JWT_SECRET or JWT_SECRET_ARN must be set"),
        ({"JWT_SECRET": "x" * 31}, "at least 32 bytes"),
        ({"JWT_SECRET": "   "}, "JWT_SECRET or JWT_SECRET_ARN must be set"),
        ({"JWT_SECRET": GOOD_KEY, "JWT_PREVIOUS_SECRET": "short"}, "JWT_PREVIOUS_SECRET"),
        ({"JWT_SECRET": GOOD_KEY, "DATABASE_URL": ""}, "DATABASE_URL or DB_SECRET_ARN"),
        ({"JWT_SECRET": GOOD_KEY, "REDIS_URL": ""}, "REDIS_URL"),
        ({"JWT_SECRET": GOOD_KEY, "REDIS_URL": "http://h"}, "REDIS_URL must be"),
    ],
)
def test_an_unsafe_configuration_is_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**BASE, **env}).validate()


def test_the_key_length_counts_bytes_not_characters():
    Settings.from_env({**BASE, "JWT_SECRET": "é" * 16}).validate()  # 32 bytes
    Settings.from_env({**BASE, "JWT_SECRET": "x" * 32}).validate()
    with pytest.raises(ConfigError):
        Settings.from_env({**BASE, "JWT_SECRET": "é" * 15 + "x"}).validate()  # 31 bytes


def test_an_arn_alone_is_enough_at_start_up():
    Settings.from_env({**BASE, "JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:jwt"}).validate()


@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgresql://u@h:5432/db", "postgresql+pg8000://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+pg8000://u@h/db"),
        ("postgresql+pg8000://u@h/db", "postgresql+pg8000://u@h/db"),
    ],
)
def test_postgresql_urls_mean_pg8000(url, expected):
    assert config.normalise_database_url(url) == expected


def _import_app(env_changes: dict[str, str | None], code: str = "import app") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"JWT_SECRET": None}, "JWT_SECRET or JWT_SECRET_ARN must be set"),
        ({"JWT_SECRET": "too-short-a-key"}, "JWT_SECRET must hold a signing key of at least 32 bytes"),
    ],
    ids=["missing", "short"],
)
def test_the_app_refuses_to_start_without_a_proper_key(changes, message):
    result = _import_app(changes)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("chalicelib.config.ConfigError: ")
    assert message in last_line
    assert "too-short-a-key" not in result.stderr  # the key itself is never echoed


def test_the_app_starts_with_a_proper_key():
    result = _import_app({}, "import app; print(sorted(app.app.routes)[0])")

    assert result.returncode == 0, result.stderr


def test_starting_with_a_secret_arn_does_not_import_boto3():
    result = _import_app(
        {"JWT_SECRET": None, "JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt"},
        "import sys, app; print('boto3' in sys.modules)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- Secrets Manager (moto) ------------------------------------------------------------------


@pytest.fixture
def secretsmanager():
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws

    with mock_aws():
        config.reset_settings()
        yield boto3.client("secretsmanager", region_name=os.environ["AWS_DEFAULT_REGION"])
    config.reset_settings()


@pytest.fixture
def fetches(monkeypatch):
    """Every call to Secrets Manager, by ARN."""
    calls: list[str] = []
    real = config.fetch_secret

    def counting(arn):
        calls.append(arn)
        return real(arn)

    monkeypatch.setattr(config, "fetch_secret", counting)
    return calls


def test_the_signing_key_is_read_from_secrets_manager_once(client, secretsmanager, fetches, reconfigure):
    arn = secretsmanager.create_secret(Name="jwt", SecretString=GOOD_KEY)["ARN"]
    reconfigure(JWT_SECRET=None, JWT_SECRET_ARN=arn)
    assert config._secrets_client is None  # nothing fetched before it is needed
    site = make_site()
    make_user(sites={site: "editor"})

    token = login(client)["token"]
    for _ in range(3):
        assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200

    assert tokens.verify(token).user_id == 1
    import jwt

    assert jwt.get_unverified_header(token)["kid"] == tokens.key_id(GOOD_KEY)
    assert fetches == [arn]


@pytest.mark.parametrize(
    "stored",
    [json.dumps({"key": GOOD_KEY}), json.dumps({"secret": GOOD_KEY}), f"  {GOOD_KEY}\n"],
    ids=["json key", "json secret", "padded text"],
)
def test_a_key_secret_may_be_text_or_json(secretsmanager, reconfigure, stored):
    arn = secretsmanager.create_secret(Name="jwt", SecretString=stored)["ARN"]
    reconfigure(JWT_SECRET=None, JWT_SECRET_ARN=arn)

    assert config.get_settings().signing_key() == GOOD_KEY


def test_a_short_key_in_the_secret_is_never_used(client, secretsmanager, reconfigure):
    arn = secretsmanager.create_secret(Name="jwt", SecretString="short")["ARN"]
    reconfigure(JWT_SECRET=None, JWT_SECRET_ARN=arn)
    make_user()

    response = client.http.post(
        "/api/auth/login",
        body=json.dumps({"username": "jdoe", "password": "correct horse battery staple"}),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 500
    assert response.json_body["error"]["code"] == "INTERNAL_ERROR"
    assert "short" not in json.dumps(response.json_body)
    # The authorizer fails (never "ok"): deployed, the AUTHORIZER_FAILURE Gateway Response (503).
    with pytest.raises(tokens.KeysUnavailable):
        client.http.get("/api/auth/me", headers=auth("eyJh.eyJz.c2ln"))  # well-formed: the keys are needed
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        config.get_settings().signing_key()


def test_the_previous_key_may_come_from_secrets_manager(client, secretsmanager, fetches, reconfigure):
    site = make_site()
    make_user(sites={site: "editor"})
    old_token = login(client)["token"]
    arn = secretsmanager.create_secret(Name="jwt-previous", SecretString=environment.TEST_JWT_SECRET)["ARN"]

    reconfigure(JWT_SECRET=GOOD_KEY, JWT_PREVIOUS_SECRET_ARN=arn)

    assert client.http.get("/api/auth/me", headers=auth(old_token)).status_code == 200
    assert client.http.get("/api/auth/me", headers=auth(old_token)).status_code == 200
    assert fetches == [arn]


def test_secrets_are_cached_per_container_and_fetched_again_only_on_request(
    secretsmanager, fetches, reconfigure
):
    arn = secretsmanager.create_secret(
        Name="db",
        SecretString=json.dumps(
            {"host": "db.example", "port": 5432, "username": "app", "password": "p@ss/word", "dbname": "main"}
        ),
    )["ARN"]
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn)
    settings = config.get_settings()

    first = settings.resolved_database_url()
    assert settings.resolved_database_url() == first
    assert fetches == [arn]
    secretsmanager.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(
            {"host": "db.example", "port": 5432, "username": "app", "password": "rotated", "dbname": "main"}
        ),
    )
    assert settings.resolved_database_url() == first  # still the cached one
    refreshed = settings.resolved_database_url(refresh=True)

    assert first == "postgresql+pg8000://app:p%40ss%2Fword@db.example:5432/main"
    assert refreshed == "postgresql+pg8000://app:rotated@db.example:5432/main"
    assert fetches == [arn, arn]


def test_a_socket_directory_as_host_means_a_unix_socket(secretsmanager, reconfigure):
    arn = secretsmanager.create_secret(
        Name="db",
        SecretString=json.dumps(
            {"host": "/run/postgresql", "port": 5433, "username": "app", "password": "pw", "dbname": "main"}
        ),
    )["ARN"]
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn)

    url = config.get_settings().resolved_database_url()

    assert url == "postgresql+pg8000://app:pw@/main?unix_sock=/run/postgresql/.s.PGSQL.5433"


@pytest.mark.parametrize("stored", ["not json", json.dumps({"host": "h"}), json.dumps(["x"])])
def test_a_malformed_database_secret_is_a_clear_error(secretsmanager, reconfigure, stored):
    arn = secretsmanager.create_secret(Name="db", SecretString=stored)["ARN"]
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn)

    with pytest.raises(ConfigError, match="DB_SECRET_ARN must be JSON"):
        config.get_settings().resolved_database_url()


def test_database_url_wins_over_the_secret(secretsmanager, fetches, reconfigure):
    reconfigure(DB_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:1:secret:unused")

    assert config.get_settings().resolved_database_url().startswith("postgresql+pg8000://")
    assert fetches == []


# --- the database secret, rotated under a live engine -------------------------------------------


@pytest.fixture
def admin():
    engine = create_engine(environment.configure()["TEST_ADMIN_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def rotating_roles(admin):
    """Two login roles on the test server, as RDS's alternating-users rotation uses. The embedded
    server trusts local connections, so passwords are not checked; what PostgreSQL refuses here is
    a role that may no longer log in (SQLSTATE 28000), which is the same path through our code as
    a refused password (28P01)."""
    names = [f"rotation_a_{os.getpid()}", f"rotation_b_{os.getpid()}"]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
            conn.execute(text(f"CREATE ROLE \"{name}\" LOGIN PASSWORD 'pw-{name}'"))
    yield names
    db.reset_engine()
    with admin.connect() as conn:
        for name in names:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"), {"n": name}
            )
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))


def _db_secret(role: str) -> str:
    """An RDS-format secret for `role` on the test server (unix socket or TCP)."""
    url = make_url(environment.configure()["DATABASE_URL"])
    socket = str(url.query.get("unix_sock") or "")
    if socket:
        directory, _, name = socket.rpartition("/")
        host, port = directory, int(name.rsplit(".", 1)[1])
    else:
        host, port = url.host, url.port or 5432
    return json.dumps(
        {"host": host, "port": port, "username": role, "password": f"pw-{role}", "dbname": url.database}
    )


def _current_user() -> str:
    with db.session_scope() as session:
        return session.scalar(text("SELECT current_user"))


def test_the_database_secret_is_fetched_again_when_the_database_refuses_it(
    client, secretsmanager, fetches, reconfigure, admin, rotating_roles
):
    old, new = rotating_roles
    arn = secretsmanager.create_secret(Name="db", SecretString=_db_secret(old))["ARN"]
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn, DB_TLS="disable")  # the test server offers no TLS
    assert _current_user() == old
    assert fetches == [arn]

    # The rotation: the secret names the new credentials, and the old ones stop working.
    secretsmanager.put_secret_value(SecretId=arn, SecretString=_db_secret(new))
    with admin.connect() as conn:
        conn.execute(text(f'ALTER ROLE "{old}" NOLOGIN'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"), {"n": old}
        )

    assert _current_user() == new  # the pooled connection died; the new one was refused, then retried
    assert fetches == [arn, arn]
    assert client.http.get("/api/health").status_code == 200

    # Later connections use the fresh credentials straight away.
    db.get_engine().pool.dispose()
    assert _current_user() == new
    assert fetches == [arn, arn]


def test_credentials_still_refused_after_a_fresh_fetch_are_503(
    client, secretsmanager, fetches, reconfigure, admin, rotating_roles
):
    old, _ = rotating_roles
    arn = secretsmanager.create_secret(Name="db", SecretString=_db_secret(old))["ARN"]
    with admin.connect() as conn:
        conn.execute(text(f'ALTER ROLE "{old}" NOLOGIN'))
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=arn, DB_TLS="disable")  # the test server offers no TLS

    response = client.http.get("/api/health")

    assert response.status_code == 503
    assert response.json_body["error"]["details"] == [{"field": "database", "message": "unavailable"}]
    assert fetches == [arn, arn]  # one fetch, one retry with a fresh copy, no loop


def test_a_refusal_is_recognised_however_pg8000_reports_it():
    import pg8000

    def masked(code: str) -> BaseException:
        """A refusal, then the "network error" of closing the socket the server already closed."""
        try:
            try:
                raise pg8000.DatabaseError({"S": "FATAL", "C": code, "M": "refused"})
            except pg8000.DatabaseError:
                try:
                    raise BrokenPipeError(32, "Broken pipe")
                except OSError as broken:
                    raise pg8000.InterfaceError("network error") from broken
        except pg8000.InterfaceError as exc:
            return exc
        raise AssertionError("unreachable")

    assert db.refused_credentials(pg8000.ProgrammingError({"C": "28P01"}))
    assert db.refused_credentials(pg8000.InterfaceError({"C": "28000"}))
    assert db.refused_credentials(masked("28P01"))
    assert not db.refused_credentials(masked("57P03"))
    assert not db.refused_credentials(pg8000.InterfaceError("network error"))
    assert not db.refused_credentials(pg8000.ProgrammingError({"C": "42P01"}))


@pytest.mark.parametrize(
    "raw, origins",
    [
        ("https://app.example.com", ("https://app.example.com",)),
        ("http://localhost:3000, http://localhost:5173", ("http://localhost:3000", "http://localhost:5173")),
        ("https://App.example.com,https://app.example.com,", ("https://app.example.com",)),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
        ("*", ("*",)),
    ],
)
def test_cors_allow_origin_takes_one_origin_or_a_list(raw, origins):
    settings = Settings.from_env({"CORS_ALLOW_ORIGIN": raw})
    assert settings.cors_allow_origins == origins
    assert settings.cors_allow_origin == origins[0]


@pytest.mark.parametrize(
    "raw",
    [
        "https://app.example.com/",
        "app.example.com",
        "ftp://x.example",
        "https://x.example:port",
        "https://user@x.example",
        "*,https://x.example",
        ",",
        "https://x.example/path",
    ],
)
def test_a_cors_origin_that_no_browser_sends_stops_start_up(raw):
    with pytest.raises(ConfigError, match="CORS_ALLOW_ORIGIN"):
        Settings.from_env({"CORS_ALLOW_ORIGIN": raw})


def test_the_default_origin_is_the_one_frontend_dev_server_deployed_dev_allows():
    assert Settings.from_env({}).cors_allow_origins == ("http://localhost:3000",)
