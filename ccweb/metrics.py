"""Prometheus instruments shared by web and worker.

HTTP request metrics are recorded by ``ccweb.http.request_metrics`` (app factory);
SQL timings come from engine events, so no query has to be instrumented by hand.

Under the pre-fork web server these values live in prometheus_client's multiprocess
files (``ccweb.server`` sets ``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` sums counters
and histograms over every process. A gauge cannot be summed blindly, so each says how
its processes combine: the worker's gauges are readings of shared state (the outbox, a
stream group), where the most recent reading of a live process is the answer.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.engine import Engine

OUTBOX_PUBLISHED = Counter(
    "cc_outbox_published_total", "Events published to Redis Streams", ["path", "result"]
)
OUTBOX_PENDING = Gauge(
    "cc_outbox_pending",
    "Outbox rows not yet behind the relay's cursor (the fast path has usually published"
    " them already; a backlog here is what the relay still has to confirm)",
    multiprocess_mode="livemostrecent",
)
WORKER_PROCESSED = Counter("cc_worker_processed_total", "Stream entries handled", ["group"])
WORKER_FAILURES = Counter("cc_worker_failures_total", "Stream entries that failed", ["group"])
WORKER_DEAD_LETTERED = Counter(
    "cc_worker_dead_lettered_total", "Entries moved to the dead-letter stream", ["group"]
)
WORKER_RECLAIMED = Counter("cc_worker_reclaimed_total", "Entries reclaimed (XAUTOCLAIM)", ["group"])
WORKER_LAG = Gauge(
    "cc_worker_lag",
    "Entries not yet delivered to the group",
    ["group", "stream"],
    multiprocess_mode="livemostrecent",
)
WORKER_PENDING = Gauge(
    "cc_worker_pending",
    "Entries delivered but not acknowledged",
    ["group"],
    multiprocess_mode="livemostrecent",
)
PROGRESS_LAG = Histogram(
    "cc_progress_lag_seconds",
    "Gameplay event time to the commit of its progress update (worker progress group)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 30.0),
)
WS_ACTIVE = Gauge(
    "cc_ws_active_connections",
    "Open realtime connections (WebSocket and SSE) on this server",
    ["transport"],
    multiprocess_mode="livesum",  # each live process counts its own sockets
)
REALTIME_PUSH_LATENCY = Histogram(
    "cc_realtime_push_latency_seconds",
    "Event time (commit) to the push being written to the player's socket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0),
)
WS_DROPPED_SLOW = Counter(
    "cc_ws_dropped_slow_total", "Realtime connections dropped for not keeping up"
)
WS_RESYNCS = Counter(
    "cc_ws_resyncs_total", "resync_required sent (history lost, epoch changed, position too old)"
)
SHOP_PURCHASE_ATTEMPTS = Counter(
    "cc_shop_purchase_attempt_total",
    "Purchase requests by idempotency state (new, replay, in_progress, failed) and failure"
    " reason (the error code; empty unless failed)",
    ["state", "reason"],
)
SHOP_PURCHASE_LATENCY = Histogram(
    "cc_shop_purchase_latency_seconds",
    "Purchase request time inside the service (lock, checks, the purchase statement)",
    ["result"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SHOP_STOCK_LEVEL = Gauge(
    "cc_shop_stock_level",
    "Remaining stock of a limited product, as last read by a purchase or the catalog",
    ["sku"],
    multiprocess_mode="mostrecent",
)
SHOP_SETTLEMENTS = Counter(
    "cc_shop_settlement_total",
    "Settlement callbacks by outcome (settled, voided, unchanged, refused, replayed, rejected)",
    ["result"],
)
SHOP_SETTLEMENT_LATENCY = Histogram(
    "cc_shop_settlement_latency_seconds",
    "Conversion purchase to its final settlement (settled or voided)",
    ["status"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 86400),
)
SHOP_UNRECOVERED_GOLD = Counter(
    "cc_shop_settlement_unrecovered_gold_total",
    "Gold of voided conversions that could not be reversed (already spent)",
)
SHOP_SETTLEMENT_PENDING = Gauge(
    "cc_shop_settlement_pending",
    "Conversion purchases awaiting their provider's settlement callback (worker reading)",
    multiprocess_mode="livemostrecent",
)
SHOP_SETTLEMENT_OLDEST_PENDING = Gauge(
    "cc_shop_settlement_oldest_pending_seconds",
    "Age of the oldest conversion still pending settlement, 0 when none (worker reading)",
    multiprocess_mode="livemostrecent",
)
# Login outcomes (seed 003 §1.1, seed 004 §G). A reason says why a login was refused:
# bad_password (the account exists), unknown_user, disabled (right password, inactive
# account), locked (refused unchecked: the account's failure window is full), not_admin
# (the admin login with a player's credentials). Each is created at import, so every
# series exists at 0 from the first scrape and rate()/increase() see the first failure.
LOGIN_FAIL_REASONS = ("bad_password", "unknown_user", "disabled", "locked", "not_admin")
AUTH_LOGIN_FAIL = Counter(
    "cc_auth_login_fail_total", "Refused login attempts, by reason", ["reason"]
)
for _reason in LOGIN_FAIL_REASONS:
    AUTH_LOGIN_FAIL.labels(reason=_reason)
AUTH_LOGIN_LOCKED = Counter(
    "cc_auth_login_locked_total",
    "Lockouts begun: failures that filled an account's window (CC_LOGIN_MAX_FAILURES in"
    " CC_LOGIN_LOCK_WINDOW_S); the attempts refused while it lasts are"
    ' cc_auth_login_fail_total{reason="locked"}',
)
SQL_SECONDS = Histogram(
    "cc_sql_seconds",
    "SQL statement time by verb",
    ["verb"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

_instrumented: set[int] = set()


def instrument_engine(engine: Engine) -> None:
    """Time every statement on ``engine`` by its leading SQL verb."""
    if id(engine) in _instrumented:
        return
    _instrumented.add(id(engine))

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("cc_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info["cc_t0"].pop()
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        SQL_SECONDS.labels(verb=verb if verb.isalpha() else "?").observe(
            time.perf_counter() - started
        )
