"""The one JSON error shape of SPEC §2 for every failure a request can meet.

Domain errors (:mod:`ccweb.errors`), Werkzeug's HTTP errors (404, 405, 413…), a store
that is down or hung, and anything unexpected all become
``{"error": {"code", "message", "details"}}``. A 500 never shows a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ccweb.errors import DomainError

log = logging.getLogger(__name__)

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

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        code = HTTP_CODES.get(status, "INTERNAL" if status >= 500 else "BAD_REQUEST")
        headers = {}
        if status == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return error_response(status, code, err.description or err.name, None, headers)

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
