"""HTTP request metrics, and ``GET /metrics`` for the whole server.

Recording is lean and our own; exposition is prometheus-flask-exporter's.

* Recording: the metric names and labels are the exporter's (``group_by="endpoint"``), so
  dashboards and alerts keep working: ``flask_http_request_duration_seconds``
  {method, status, endpoint}, ``flask_http_request_total`` {method, status} and
  ``flask_http_request_exceptions_total`` {method, status}. The exporter's own per-request
  glue (attribute probes, label dicts resolved on every call) costs more web CPU: +16 %
  per ``/health`` request, +5 % per spin, +8 % per cached dashboard read, measured in
  multiprocess mode (bench/RESULTS.md); here each label combination resolves its metric
  children once and a request costs two dict lookups, an observe and an increment.
* Exposition: ``PrometheusMetrics(export_defaults=False)`` only serves ``/metrics``. When
  ``PROMETHEUS_MULTIPROC_DIR`` is set — the pre-fork server's parent sets it for its web
  processes (``ccweb.server``) — every process writes its values to its own files there
  and each scrape sums them all (``MultiProcessCollector``), so whichever process accepts
  the scrape answers for the whole server, and a process that died keeps its counts in.
  In one process (tests, ``CC_WEB_PROCESSES=1``) it is the default registry.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics

DURATION = Histogram(
    "flask_http_request_duration_seconds",
    "Flask HTTP request duration in seconds",
    ["method", "status", "endpoint"],
)
TOTAL = Counter("flask_http_request_total", "Total number of HTTP requests", ["method", "status"])
EXCEPTIONS = Counter(
    "flask_http_request_exceptions_total",
    "Total number of HTTP requests which resulted in an exception",
    ["method", "status"],
)

_T0 = "cc.metrics.t0"
_children: dict[tuple[str, int, str | None], tuple[Any, Any]] = {}


def _observe(method: str, status: int, endpoint: str | None, seconds: float) -> None:
    key = (method, status, endpoint)
    pair = _children.get(key)
    if pair is None:
        pair = (
            DURATION.labels(method=method, status=str(status), endpoint=str(endpoint)),
            TOTAL.labels(method=method, status=str(status)),
        )
        _children[key] = pair
    pair[0].observe(seconds)
    pair[1].inc()


def init_request_metrics(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        request.environ[_T0] = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        t0 = request.environ.get(_T0)
        if t0 is not None:
            _observe(request.method, resp.status_code, request.endpoint, time.perf_counter() - t0)
        return resp

    @app.teardown_request
    def _failed(exc: BaseException | None) -> None:
        if exc is not None:
            EXCEPTIONS.labels(method=request.method, status="500").inc()

    PrometheusMetrics(app, path="/metrics", export_defaults=False)
