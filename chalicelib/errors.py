"""The application's errors, and the one list of error codes with their HTTP statuses.

Raise them anywhere; the middleware alone turns them into the envelope. The OpenAPI document, the
middleware (Chalice's own answers mapped onto ours) and API Gateway's Gateway Responses all take
their codes and statuses from `CATALOG` and `STATUS_DESCRIPTIONS` below.

They subclass Chalice's `ChaliceUnhandledError` because only those reach the middleware intact
(Chalice answers every other exception itself before middleware sees it).
"""

from __future__ import annotations

from typing import Any

from chalice import ChaliceUnhandledError


class ApiError(ChaliceUnhandledError):
    status = 500
    code = "INTERNAL_ERROR"
    default_message = "An internal error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"status": "error", "error": error}


class ValidationFailed(ApiError):
    status, code, default_message = 400, "VALIDATION_ERROR", "The request is not valid"


class AuthenticationFailed(ApiError):
    status, code, default_message = 401, "AUTHENTICATION_ERROR", "Authentication required"


class Forbidden(ApiError):
    status, code, default_message = 403, "AUTHORIZATION_ERROR", "You are not allowed to do this"


class SiteContextRequired(ApiError):
    status, code = 403, "SITE_CONTEXT_REQUIRED"
    default_message = "Select a site first (POST /api/auth/site)"


class NotFound(ApiError):
    status, code, default_message = 404, "RESOURCE_NOT_FOUND", "Resource not found"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class Conflict(ApiError):
    status, code, default_message = 409, "CONFLICT", "The request conflicts with the current state"


class PreconditionFailed(ApiError):
    status, code = 412, "PRECONDITION_FAILED"
    default_message = "If-Match does not match the current version"


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The request body is too large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Request bodies must be sent with Content-Type: application/json"


class IdempotencyKeyReused(ApiError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was already used with a different body"


class _TooMany(ApiError):
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        # The whole seconds until the window or the lock ends, never more: 0 in its last second.
        self.retry_after = max(0, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class RateLimited(_TooMany):
    code, default_message = "RATE_LIMITED", "Too many requests; retry later"


class AccountLocked(_TooMany):
    code = "ACCOUNT_LOCKED"
    default_message = "Too many failed logins; this account is locked for a while"


class ServiceUnavailable(ApiError):
    status, code = 503, "SERVICE_UNAVAILABLE"
    default_message = "A backing service is unavailable; the request had no effect"


class GatewayTimeout(ApiError):
    """Never raised by the application: API Gateway answers it (a Gateway Response) when the API
    Lambda did not answer in time. Listed so that its code has one definition too."""

    status, code = 504, "TIMEOUT"
    default_message = "The request timed out; its outcome is unknown. Retry it with the same Idempotency-Key"


class InternalError(ApiError):
    pass


# Every error code the API (or API Gateway in front of it) answers with, in the order of API.md.
CATALOG: tuple[type[ApiError], ...] = (
    ValidationFailed,
    AuthenticationFailed,
    Forbidden,
    SiteContextRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    RateLimited,
    AccountLocked,
    ServiceUnavailable,
    GatewayTimeout,
    InternalError,
)

# What each status means, in words (the OpenAPI document names the codes beside them).
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON (a key given twice in one object included), invalid or unknown fields, or bad or "
    "unknown query parameters (every one in `details`)",
    401: "No valid token: missing, not exactly `Bearer <token>` in compact form, bad signature, expired, "
    "revoked, or an inactive user",
    403: "The role does not allow it, or the token has no active site",
    404: "No such resource, or one of a site the caller may not see",
    405: "The path exists but not with this method (`Allow` lists the methods)",
    409: "A duplicate, the last admin of a site, or the same Idempotency-Key still in progress (then with "
    "`Retry-After`)",
    412: "If-Match does not match the current version (stale, weak or malformed)",
    413: "The body is over 256 KiB (over 10 MB, on any method, API Gateway refuses it itself)",
    415: "A body without Content-Type: application/json",
    422: "The same Idempotency-Key with a different body",
    429: "Too many requests, or too many failed logins; retry after `Retry-After` seconds",
    500: "An unexpected error, logged with the request id",
    503: "The database or Redis is unreachable, no connection was free in time, or a statement "
    "timed out; nothing happened (when API Gateway could not run the authorizer, with `Retry-After`)",
    504: "Deployed only: the gateway gave up waiting; the outcome is unknown (retry a create with the "
    "same Idempotency-Key)",
}


def codes() -> list[str]:
    return [error.code for error in CATALOG]


def for_status(status: int) -> type[ApiError]:
    """The error class answering `status` (the first listed: e.g. 403 is AUTHORIZATION_ERROR)."""
    return next((error for error in CATALOG if error.status == status), InternalError)
