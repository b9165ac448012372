"""Domain errors: what went wrong, with the status and code of SPEC §2.

Services raise :class:`DomainError` subclasses; :mod:`ccweb.http.errors` turns any of
them (and Werkzeug's HTTP errors, store outages, and anything unexpected) into the one
JSON shape ``{"error": {"code", "message", "details"}}``. This module imports no web
framework, so the ledger and the worker can raise the same errors.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "VALIDATION_ERROR"
    message = "invalid request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(DomainError):
    status, code, message = 400, "VALIDATION_ERROR", "invalid request"


class Unauthorized(DomainError):
    status, code, message = 401, "UNAUTHORIZED", "authentication required"


class InvalidCredentials(Unauthorized):
    code, message = "INVALID_CREDENTIALS", "wrong site_id or password"


class TokenExpired(Unauthorized):
    code, message = "TOKEN_EXPIRED", "token expired"


class TokenRevoked(Unauthorized):
    code, message = "TOKEN_REVOKED", "token revoked"


class Forbidden(DomainError):
    status, code, message = 403, "FORBIDDEN", "not allowed"


class FeatureDisabled(Forbidden):
    """An operator switched the feature off (a feature flag): not the caller's fault, not
    transient either — the client shows it and offers something else."""

    code, message = "FEATURE_DISABLED", "this feature is switched off"


class NotFound(DomainError):
    status, code, message = 404, "NOT_FOUND", "not found"


class Conflict(DomainError):
    status, code, message = 409, "CONFLICT", "state conflict"


class Duplicate(Conflict):
    code, message = "DUPLICATE", "already exists"


class InProgress(Conflict):
    code, message = (
        "IN_PROGRESS",
        "a request with this idempotency key is still running",
    )


class InsufficientGold(Conflict):
    code, message = "INSUFFICIENT_GOLD", "not enough gold"


class TooManyRequests(DomainError):
    status, code, message = 429, "RATE_LIMITED", "too many requests"

    def __init__(self, retry_after_s: int, message: str | None = None, **kw: Any) -> None:
        retry_after_s = max(1, int(retry_after_s))
        kw.setdefault("details", {})["retry_after_s"] = retry_after_s
        kw.setdefault("headers", {})["Retry-After"] = str(retry_after_s)
        super().__init__(message, **kw)


class LoginLocked(TooManyRequests):
    code, message = "LOGIN_LOCKED", "too many failed logins; try again later"
