"""Domain errors and the one JSON error shape of SPEC §2.

Services raise :class:`DomainError` subclasses; one Flask handler turns any of them
(and Werkzeug's HTTP errors, and anything unexpected) into
``{"error": {"code", "message", "details"}}``. A 500 never shows a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


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


HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    resp = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(err: DomainError) -> Response:
        return error_response(err.status, err.code, err.message, err.details, err.headers)

    from ccweb.games.errors import GameInputError

    @app.errorhandler(GameInputError)
    def _game_input(err: GameInputError) -> Response:
        return error_response(400, "VALIDATION_ERROR", str(err), err.details())

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        code = HTTP_CODES.get(status, "INTERNAL" if status >= 500 else "BAD_REQUEST")
        headers = {}
        if status == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return error_response(status, code, err.description or err.name, None, headers)

    import redis.exceptions
    import sqlalchemy.exc

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)  # CC_REDIS_TIMEOUT_S: Redis hangs
    # lost/refused connection, statement timeout, PostgreSQL not answering in time
    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.InterfaceError)  # a connection closed under us
    @app.errorhandler(sqlalchemy.exc.TimeoutError)  # no free pooled connection in time
    def _unavailable(err: Exception) -> Response:
        """A store we depend on is down, hung or saturated: say so, retryably (503 +
        Retry-After), instead of a bare 500 or a request that waits as long as the store
        does (every client has a timeout: ccweb.redis_client, ccweb.db_timeouts). A money
        statement is one transaction, so it applied wholly or not at all (only a
        connection lost during its commit — or a statement sent to a server that froze
        and ran it after thawing — leaves the client unsure: a retry with the same
        X-Idempotency-Key settles that)."""
        log.warning("dependency unavailable: %s: %s", type(err).__name__, err)
        return error_response(
            503,
            "SERVICE_UNAVAILABLE",
            "a backing service is unavailable; retry shortly",
            None,
            {"Retry-After": "1"},
        )

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        log.exception("unhandled error: %s", type(err).__name__)
        return error_response(500, "INTERNAL", "internal error")

    @app.errorhandler(sqlalchemy.exc.DBAPIError)
    def _database(err: sqlalchemy.exc.DBAPIError) -> Response:
        """Any other driver error is a bug (500) unless the connection was lost with it."""
        return _unavailable(err) if err.connection_invalidated else _unexpected(err)
