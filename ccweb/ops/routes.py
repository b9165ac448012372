"""Liveness, readiness and the player's feature flags."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from sqlalchemy import text

from ccweb.auth.guard import auth_required
from ccweb.config import get_settings
from ccweb.db import autocommit, engine
from ccweb.flags.service import client_flags
from ccweb.http.validation import doc
from ccweb.ops.readiness import clickhouse_status, kafka_status
from ccweb.redis_client import get_redis

bp = Blueprint("ops", __name__)


@bp.get("/health")
@doc("Liveness (no dependencies)", tags=("ops",))
def health() -> Any:
    return {"status": "ok"}


@bp.get("/ready")
@doc(
    "Readiness: PostgreSQL and Redis required; Kafka and ClickHouse optional"
    " (up, down or disabled; a sink that is down does not fail readiness)",
    tags=("ops",),
)
def ready() -> Any:
    checks: dict[str, Any] = {}
    try:
        with engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:  # report, don't raise: this endpoint describes failures
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    s = get_settings()
    # optional sinks (SPEC §4): events wait in the outbox/streams while one is down
    checks["kafka"] = kafka_status(s.kafka_bootstrap_servers)
    checks["clickhouse"] = clickhouse_status(s.clickhouse_url)
    ok = checks["postgres"] == "ok" and checks["redis"] == "ok"
    return {"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503


# the caller's tier and segment, in the one query this route makes
_FLAG_CONTEXT = text(
    "SELECT u.tier, s.label FROM users u LEFT JOIN user_segments s ON s.user_id = u.id"
    " WHERE u.id = :u"
)


@bp.get("/api/flags")
@doc("Client-visible feature flags as they apply to the caller", tags=("flags",))
@auth_required
def flags() -> Any:
    with autocommit() as conn:
        row = conn.execute(_FLAG_CONTEXT, {"u": g.user_id}).first()
    tier, segment = (row[0], row[1]) if row is not None else (None, None)
    return client_flags(g.user_id, tier, segment)
