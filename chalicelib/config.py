"""One settings object, read from the environment once per container.

Secrets (the JWT keys, the database credentials) may come from AWS Secrets Manager; they are
fetched lazily, on first use, and cached for the life of the container. boto3 is imported only
then, so a container that never needs a secret never pays for it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

MIN_KEY_BYTES = 32
# An origin as a browser sends it in `Origin` (host names in ASCII: punycode for others).
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?")
DB_TLS_MODES = ("disable", "require", "verify-full")
DB_PROXY_AUTH_MODES = ("secret", "iam")


class ConfigError(RuntimeError):
    """The environment cannot run the service safely; start-up stops with this message."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def cors_origins(raw: str) -> tuple[str, ...]:
    """CORS_ALLOW_ORIGIN: one origin or a comma-separated list (`scheme://host[:port]`, as a
    browser sends it in `Origin`: no path, no trailing slash; compared case-insensitively), or `*`
    alone. Anything else stops start-up: a typo must not silently refuse the frontend."""
    origins: list[str] = []
    for part in raw.split(","):
        origin = part.strip()
        if not origin:
            continue
        if origin == "*":
            if raw.strip() != "*":
                raise ConfigError("CORS_ALLOW_ORIGIN: '*' allows every origin and cannot be part of a list")
            return ("*",)
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS_ALLOW_ORIGIN: {origin!r} is not an origin (scheme://host[:port], no path or "
                "trailing slash), e.g. https://app.example.com"
            )
        if origin.lower() not in origins:
            origins.append(origin.lower())
    if not origins:
        raise ConfigError("CORS_ALLOW_ORIGIN names no origin")
    return tuple(origins)


def pick_origin(origins: tuple[str, ...], request_origin: str | None) -> str:
    """`Access-Control-Allow-Origin` for a request with this `Origin`: the request's own origin
    when it is one of `origins`, else the first (which a browser on another origin refuses)."""
    if request_origin and request_origin.lower() in origins:
        return request_origin
    return origins[0]


def normalise_database_url(url: str) -> str:
    """`postgresql://` (and the old `postgres://`) mean the pg8000 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+pg8000://" + url[len(prefix) :]
    return url


def _redis_endpoint(url: str | None) -> str | None:
    """REDIS_ENDPOINT: a deployed stage's Redis URL from .chalice/config.json, used only when REDIS_URL
    is unset. It has its own name because Chalice copies a stage's variables over the environment,
    where a REDIS_URL would override a local run's; config.json holds no secrets, so no password."""
    if url and (urlsplit(url).username or urlsplit(url).password):
        raise ConfigError("REDIS_ENDPOINT must not contain credentials (it is not a secret)")
    return url


def _label(value: str) -> str:
    """OPERATOR_LABEL: shown to clients, so plain printable text of at most 64 characters."""
    if len(value) > 64 or not value.isprintable():
        raise ConfigError("OPERATOR_LABEL must be at most 64 printable characters")
    return value


def _check_key(name: str, key: str | None) -> str:
    if key is None or len(key.encode()) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{name} must hold a signing key of at least {MIN_KEY_BYTES} bytes "
            f"(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return key


@dataclass
class Settings:
    database_url: str | None = None
    db_secret_arn: str | None = None
    redis_url: str | None = None
    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    jwt_previous_secret: str | None = None
    jwt_previous_secret_arn: str | None = None
    jwt_issuer: str = "interactions-local"
    jwt_audience: str = "interactions-api-local"
    jwt_ttl_seconds: int = 86400
    # The frontends allowed to call the API (CORS_ALLOW_ORIGIN); the first is the one named by
    # answers that cannot depend on the request (API Gateway's own). The local run command lists
    # the usual dev servers instead (devtools/run.py).
    cors_allow_origins: tuple[str, ...] = ("http://localhost:3000",)
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    login_rate_per_minute: int = 20
    api_rate_per_minute: int = 600
    # Substring searches (search, title, lead, location) a user may make a minute: a common term
    # reads tens of thousands of rows, and a few users repeating one would saturate the database.
    search_rate_per_minute: int = 30
    invitation_ttl_seconds: int = 604800  # an invitation's life: 7 days
    # `prune-audit` refuses to delete events younger than this many days.
    audit_min_retention_days: int = 90
    # How command-line events name their operator over the API (to a site's admins only): never the
    # operating-system account, which the CLI's own `audit` shows.
    operator_label: str = "operator"
    # How invitations are sent: "ses" (Amazon SES, deployed) or "directory:<path>" (.eml files: the
    # local run, tests). The default is the local run's, and "ses" in a Lambda.
    mail_delivery: str = "directory:.devdata/mail"
    mail_from: str | None = None  # the sender address (required with ses)
    # The frontend's accept page, `{token}` replaced by the invitation's token. The default is the
    # usual dev frontend's (the local run also prints how to accept without one).
    invite_url: str = "http://localhost:5173/accept-invitation?token={token}"
    # Beyond API.md's list: kept below the Lambda timeout, which is below API Gateway's 29 s.
    db_statement_timeout_ms: int = 5000
    # Connecting (TCP, TLS, authentication) has its own short deadline; once connected, a read
    # waits the statement timeout plus a margin, so PostgreSQL's own timeout normally ends it.
    db_connect_timeout_s: float = 1.5
    db_read_margin_s: int = 5
    # TLS to PostgreSQL: "disable", "require" (encrypted, certificate not checked) or "verify-full"
    # (the default for DB_SECRET_ARN, i.e. deployed: RDS and RDS Proxy refuse plain connections).
    db_tls: str = "disable"
    db_tls_ca_file: str | None = None
    # RDS Proxy (deployed stages that have one): its endpoint, `host` or `host:port`, and how the
    # API signs in — "secret" (DB_SECRET_ARN's user and password, a secret the proxy holds too) or
    # "iam" (an IAM authentication token as DB_PROXY_USER into DB_PROXY_DATABASE, no secret).
    db_proxy: str | None = None
    db_proxy_auth: str = "secret"
    db_proxy_user: str | None = None
    db_proxy_database: str | None = None
    redis_timeout_s: float = 0.5
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        settings = cls(
            database_url=opt("DATABASE_URL"),
            db_secret_arn=opt("DB_SECRET_ARN"),
            redis_url=opt("REDIS_URL") or _redis_endpoint(opt("REDIS_ENDPOINT")),
            jwt_secret=opt("JWT_SECRET"),
            jwt_secret_arn=opt("JWT_SECRET_ARN"),
            jwt_previous_secret=opt("JWT_PREVIOUS_SECRET"),
            jwt_previous_secret_arn=opt("JWT_PREVIOUS_SECRET_ARN"),
            jwt_issuer=opt("JWT_ISSUER") or cls.jwt_issuer,
            jwt_audience=opt("JWT_AUDIENCE") or cls.jwt_audience,
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", cls.jwt_ttl_seconds, minimum=60),
            cors_allow_origins=cors_origins(opt("CORS_ALLOW_ORIGIN") or ",".join(cls.cors_allow_origins)),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", cls.login_max_failures),
            login_lockout_seconds=_int(env, "LOGIN_LOCKOUT_SECONDS", cls.login_lockout_seconds),
            login_rate_per_minute=_int(env, "LOGIN_RATE_PER_MINUTE", cls.login_rate_per_minute),
            api_rate_per_minute=_int(env, "API_RATE_PER_MINUTE", cls.api_rate_per_minute),
            search_rate_per_minute=_int(env, "SEARCH_RATE_PER_MINUTE", cls.search_rate_per_minute),
            invitation_ttl_seconds=_int(
                env, "INVITATION_TTL_SECONDS", cls.invitation_ttl_seconds, minimum=60
            ),
            audit_min_retention_days=_int(env, "AUDIT_MIN_RETENTION_DAYS", cls.audit_min_retention_days),
            operator_label=_label(opt("OPERATOR_LABEL") or cls.operator_label),
            # A Lambda sends through SES unless told otherwise; anything else writes files.
            mail_delivery=opt("MAIL_DELIVERY")
            or ("ses" if env.get("AWS_LAMBDA_FUNCTION_NAME") else cls.mail_delivery),
            mail_from=opt("MAIL_FROM"),
            invite_url=opt("INVITE_URL") or cls.invite_url,
            db_statement_timeout_ms=_int(
                env, "DB_STATEMENT_TIMEOUT_MS", cls.db_statement_timeout_ms, minimum=100
            ),
            db_tls_ca_file=opt("DB_TLS_CA_FILE"),
            db_proxy=opt("DB_PROXY"),
            db_proxy_auth=(opt("DB_PROXY_AUTH") or cls.db_proxy_auth).lower(),
            db_proxy_user=opt("DB_PROXY_USER"),
            db_proxy_database=opt("DB_PROXY_DATABASE"),
        )
        if settings.db_proxy_auth not in DB_PROXY_AUTH_MODES:
            raise ConfigError(
                f"DB_PROXY_AUTH must be one of {', '.join(DB_PROXY_AUTH_MODES)}, got {settings.db_proxy_auth!r}"
            )
        if settings.db_proxy is not None:
            settings.proxy_address()  # a malformed endpoint stops start-up
        deployed_default = "verify-full" if settings.uses_db_secret or settings.uses_db_proxy else "disable"
        settings.db_tls = (opt("DB_TLS") or deployed_default).lower()
        if settings.db_tls not in DB_TLS_MODES:
            raise ConfigError(f"DB_TLS must be one of {', '.join(DB_TLS_MODES)}, got {settings.db_tls!r}")
        return settings

    def validate(self) -> None:
        """Refuse to start the API with a configuration that cannot work or is unsafe.
        (The CLI checks only what each command needs.)"""
        if not self.jwt_secret and not self.jwt_secret_arn:
            raise ConfigError("JWT_SECRET or JWT_SECRET_ARN must be set")
        if self.jwt_secret:
            _check_key("JWT_SECRET", self.jwt_secret)
        if self.jwt_previous_secret:
            _check_key("JWT_PREVIOUS_SECRET", self.jwt_previous_secret)
        if not self.database_url and not self.db_secret_arn and not self.uses_proxy_iam:
            raise ConfigError("DATABASE_URL or DB_SECRET_ARN must be set")
        if self.uses_proxy_iam and not (self.db_proxy_user and self.db_proxy_database):
            raise ConfigError("DB_PROXY_AUTH=iam needs DB_PROXY_USER and DB_PROXY_DATABASE")
        if not self.redis_url:
            raise ConfigError("REDIS_URL must be set")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        self.validate_mail()

    def validate_mail(self) -> None:
        """MAIL_DELIVERY, MAIL_FROM and INVITE_URL: what sending an invitation needs. A Lambda
        (AWS_LAMBDA_FUNCTION_NAME is set) refuses the directory sender: its files would be lost."""
        if self.mail_delivery == "ses":
            if not self.mail_from or "@" not in self.mail_from:
                raise ConfigError("MAIL_DELIVERY=ses needs MAIL_FROM, the sender's address")
        elif self.mail_directory is None:
            raise ConfigError(
                f"MAIL_DELIVERY must be 'ses' or 'directory:<path>', got {self.mail_delivery!r}"
            )
        elif os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise ConfigError("MAIL_DELIVERY=directory: is for local runs and tests; deployed, use ses")
        if self.invite_url.count("{token}") != 1 or not self.invite_url.startswith(("https://", "http://")):
            raise ConfigError("INVITE_URL must be an http(s) URL holding {token} once")

    @property
    def mail_directory(self) -> str | None:
        """The directory of MAIL_DELIVERY=directory:<path>, or None for any other sender."""
        kind, _, path = self.mail_delivery.partition(":")
        return path.strip() or None if kind == "directory" else None

    # --- secrets -------------------------------------------------------------------------------

    def _secret(self, arn: str, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or arn not in self._cache:
                self._cache[arn] = fetch_secret(arn)
            return str(self._cache[arn])

    def signing_key(self, *, refresh: bool = False) -> str:
        """The current JWT key (from JWT_SECRET, or fetched once from JWT_SECRET_ARN; again with
        `refresh`, when a token names a key this container has not loaded)."""
        if self.jwt_secret:
            return _check_key("JWT_SECRET", self.jwt_secret)
        if not self.jwt_secret_arn:
            raise ConfigError("JWT_SECRET or JWT_SECRET_ARN must be set")
        raw = self._secret(self.jwt_secret_arn, refresh=refresh)
        return _check_key("the secret at JWT_SECRET_ARN", _plain_secret(raw))

    def previous_signing_key(self, *, refresh: bool = False) -> str | None:
        if self.jwt_previous_secret:
            return self.jwt_previous_secret
        if self.jwt_previous_secret_arn:
            raw = self._secret(self.jwt_previous_secret_arn, refresh=refresh)
            return _check_key("the secret at JWT_PREVIOUS_SECRET_ARN", _plain_secret(raw))
        return None

    def proxy_address(self) -> tuple[str, int]:
        """DB_PROXY as (host, port); the port defaults to 5432."""
        raw = self.db_proxy or ""
        host, _, port = raw.rpartition(":") if ":" in raw else (raw, "", "5432")
        if not host or "/" in raw or "@" in raw or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"DB_PROXY must be the proxy's endpoint, host or host:port, got {raw!r}")
        return host, int(port)

    def resolved_database_url(self, *, refresh: bool = False) -> str:
        """DATABASE_URL, or a URL built from the RDS-format secret at DB_SECRET_ARN (its host and
        port replaced by DB_PROXY's when a proxy is set), or, with DB_PROXY_AUTH=iam, the proxy's
        URL without a password (each connect brings an IAM token: chalicelib/db.py)."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        if self.uses_proxy_iam:
            host, port = self.proxy_address()
            user = quote(self.db_proxy_user or "", safe="")
            return f"postgresql+pg8000://{user}@{host}:{port}/{quote(self.db_proxy_database or '', safe='')}"
        if not self.db_secret_arn:
            raise ConfigError("DATABASE_URL or DB_SECRET_ARN must be set")
        try:
            secret = json.loads(self._secret(self.db_secret_arn, refresh=refresh))
            user = quote(str(secret["username"]), safe="")
            password = quote(str(secret["password"]), safe="")
            host, port = secret["host"], int(secret.get("port", 5432))
            dbname = quote(str(secret.get("dbname", "postgres")), safe="")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                "the secret at DB_SECRET_ARN must be JSON with host, port, username, password, dbname"
            ) from exc
        if self.uses_db_proxy:
            host, port = self.proxy_address()
        if str(host).startswith("/"):  # a socket directory, as libpq reads a host starting with /
            socket = quote(f"{host.rstrip('/')}/.s.PGSQL.{port}", safe="/")
            return f"postgresql+pg8000://{user}:{password}@/{dbname}?unix_sock={socket}"
        return f"postgresql+pg8000://{user}:{password}@{host}:{port}/{dbname}"

    def db_ssl_context(self) -> Any:
        """The ssl.SSLContext for pg8000, or None when DB_TLS is "disable"."""
        if self.db_tls == "disable":
            return None
        import ssl

        context = ssl.create_default_context(cafile=self.db_tls_ca_file)
        if self.db_tls == "require":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @property
    def cors_allow_origin(self) -> str:
        """The first allowed origin: what an answer names when the request's `Origin` is none of them."""
        return self.cors_allow_origins[0]

    def allowed_origin(self, request_origin: str | None) -> str:
        return pick_origin(self.cors_allow_origins, request_origin)

    @property
    def cors_varies(self) -> bool:
        """Whether the CORS answer depends on the request's `Origin` (then `Vary: Origin`)."""
        return len(self.cors_allow_origins) > 1

    @property
    def db_read_timeout_s(self) -> float:
        return self.db_statement_timeout_ms / 1000 + self.db_read_margin_s

    @property
    def uses_db_secret(self) -> bool:
        return not self.database_url and bool(self.db_secret_arn) and not self.uses_proxy_iam

    @property
    def uses_db_proxy(self) -> bool:
        """Deployed through RDS Proxy (DB_PROXY; DATABASE_URL, a local run's, wins)."""
        return not self.database_url and bool(self.db_proxy)

    @property
    def uses_proxy_iam(self) -> bool:
        return self.uses_db_proxy and self.db_proxy_auth == "iam"


def _plain_secret(raw: str) -> str:
    """A key secret may be stored as plain text or as JSON {"key": "..."} / {"secret": "..."}."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        for name in ("key", "secret", "jwt_secret", "value"):
            value = data.get(name) if isinstance(data, dict) else None
            if isinstance(value, str):
                return value
    return text


_secrets_client: Any = None


def fetch_secret(arn: str) -> str:
    """Read one secret string from Secrets Manager (boto3 is imported here, not at start-up)."""
    global _secrets_client
    if _secrets_client is None:
        import boto3  # type: ignore[import-untyped]  # boto3 ships no type information; lazy: ~100 ms of cold start

        _secrets_client = boto3.client("secretsmanager")
    return str(_secrets_client.get_secret_value(SecretId=arn)["SecretString"])


_settings: Settings | None = None
_settings_lock = threading.Lock()


def require_valid_settings() -> Settings:
    settings = get_settings()
    settings.validate()
    return settings


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        with _settings_lock:
            if _settings is None:
                _settings = Settings.from_env()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings, secrets and AWS client (tests change the environment)."""
    global _settings, _secrets_client
    _settings = None
    _secrets_client = None
