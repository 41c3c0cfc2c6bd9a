"""The application's errors. Raise them anywhere; the middleware alone turns them into the envelope.

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
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class RateLimited(_TooMany):
    code, default_message = "RATE_LIMITED", "Too many requests; retry later"


class AccountLocked(_TooMany):
    code = "ACCOUNT_LOCKED"
    default_message = "Too many failed logins; this account is locked for a while"


class ServiceUnavailable(ApiError):
    status, code = 503, "SERVICE_UNAVAILABLE"
    default_message = "A backing service is unavailable; the request had no effect"


class InternalError(ApiError):
    pass


# What Chalice itself may answer (`{"Code", "Message"}`), mapped onto our envelope.
CHALICE_CODES: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    503: ServiceUnavailable,
}
