"""Admin analytics API (``/api/admin/analytics/*``), answered from ClickHouse.

ClickHouse is an optional sink: when it is disabled (``CLICKHOUSE_URL`` empty) or cannot
answer (down, timing out, not migrated), the route answers 503 ``SERVICE_UNAVAILABLE``
in the SPEC error shape at once (bounded connect and read timeouts,
``ccweb.analytics.clickhouse``) instead of hanging or failing with a 500.
"""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Any

from flask import Blueprint
from pydantic import Field, field_validator, model_validator

from ccweb.analytics import clickhouse
from ccweb.analytics.kpis import MAX_RANGE_DAYS, kpis
from ccweb.analytics.metrics import CH_KPI_QUERY_SECONDS
from ccweb.auth.guard import auth_required
from ccweb.config import get_settings
from ccweb.errors import DomainError
from ccweb.http.validation import QuerySchema, doc, validate

bp = Blueprint("analytics_admin", __name__, url_prefix="/api/admin/analytics")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ServiceUnavailable(DomainError):
    status, code = 503, "SERVICE_UNAVAILABLE"
    message = "analytics store unavailable"


class KpiQuery(QuerySchema):
    """``from`` and ``to`` are UTC calendar days (YYYY-MM-DD), inclusive."""

    start: date = Field(alias="from", description="first UTC day, YYYY-MM-DD")
    end: date = Field(alias="to", description="last UTC day (inclusive), YYYY-MM-DD")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _calendar_day(cls, value: Any) -> Any:
        # pydantic would also take a timestamp or a datetime string as a date
        if not isinstance(value, str) or not _DATE_RE.match(value):
            raise ValueError("must be a date YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _range(self) -> KpiQuery:
        if self.start > self.end:
            raise ValueError("'from' must not be after 'to'")
        if (self.end - self.start).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"the range may span at most {MAX_RANGE_DAYS} days")
        return self


@bp.get("/kpis")
@doc(
    "Daily KPIs (DAU, ARPDAU, event claims and conversion, purchases and success rate)"
    " and whales, from ClickHouse",
    errors=(400, 401, 403, 503),
)
@auth_required(admin=True)
@validate(query=KpiQuery)
def get_kpis(query: KpiQuery) -> Any:
    settings = get_settings()
    if not settings.clickhouse_url:
        raise ServiceUnavailable(
            "ClickHouse is disabled (CLICKHOUSE_URL is empty)", details={"sink": "clickhouse"}
        )
    started = time.perf_counter()
    try:
        with clickhouse.pool(settings).client() as client:
            out = kpis(client, query.start, query.end)
    except Exception as exc:
        if clickhouse.is_outage(exc):
            raise ServiceUnavailable(
                "ClickHouse cannot answer right now",
                details={"sink": "clickhouse"},
                headers={"Retry-After": "5"},
            ) from exc
        raise
    CH_KPI_QUERY_SECONDS.observe(time.perf_counter() - started)
    return out
