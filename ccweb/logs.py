"""Structured JSON logs (structlog) with a request id on every line.

The request id comes from ``X-Request-ID`` when a proxy sets it, otherwise it is
generated; it is echoed in the response and bound for every log line of the request.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import structlog
from flask import Flask, Response, g, request

from ccweb.config import Settings

access_log = structlog.get_logger("ccweb.access")


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # stdlib loggers (ours and libraries') go through the same JSON renderer
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def init_request_logging(app: Flask, settings: Settings) -> None:
    @app.before_request
    def _start() -> None:
        rid = request.headers.get("X-Request-ID") or os.urandom(16).hex()
        g.request_id = rid[:64]
        g.t0 = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(resp: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            resp.headers["X-Request-ID"] = rid
        if settings.access_log and "t0" in g:
            access_log.info(
                "request",
                method=request.method,
                path=request.path,
                status=resp.status_code,
                ms=round((time.perf_counter() - g.t0) * 1000, 2),
                user_id=g.get("user_id"),
            )
        return resp
