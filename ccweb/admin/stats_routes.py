"""``GET /api/admin/stats``: the operator's numbers, cached 5 s for every web process
(fields and sources: :mod:`ccweb.admin.stats`; the replay ratio's counter is
``cc_idempotency_requests_total``, kept by :func:`ccweb.idempotency.service.idempotent`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import BaseModel, Field

from ccweb.admin import stats
from ccweb.auth.guard import auth_required
from ccweb.config import get_settings
from ccweb.http.validation import QuerySchema, doc, validate

bp = Blueprint("admin_stats", __name__)


class StatsQuery(QuerySchema):
    fresh: bool = Field(default=False, description="compute now instead of the 5 s cache")


class PlayersOut(BaseModel):
    total: int | None = Field(description="accounts that are not admins")
    active_today: int | None = Field(description="DAU: user_daily_activity rows for today (UTC)")
    new_today: int | None


class PurchasesOut(BaseModel):
    total: int | None = Field(description="successful purchases (shop_purchases rows)")
    today: int | None
    failed_today: int | None = Field(description="shop.purchase outbox events status=failed")
    failed_complete: bool = Field(description="false: outbox retention shorter than the day")
    attempts_today: int | None
    success_rate: float | None = Field(description="today / attempts_today, percent")
    settlement_pending: int | None
    settlement_voided: int | None


class GoldOut(BaseModel):
    in_circulation: int | None = Field(description="SUM(users.gold_balance)")
    ledger_sum: int | None = Field(description="SUM(wallet_ledger.delta_gold), same snapshot")
    consistent: bool | None
    difference: int | None = Field(description="in_circulation - ledger_sum")
    ledger_catching_up: bool


class IdempotencyOut(BaseModel):
    replay_ratio: float | None = Field(description="replays / keyed_requests, percent")
    replays: int = Field(description="since the server started, all web processes")
    keyed_requests: int
    purchase_replays: int
    purchase_keyed: int


class OutboxOut(BaseModel):
    pending: int | None = Field(description="rows after the relay's cursor")
    oldest_pending_age_s: float | None


class GroupOut(BaseModel):
    lag: int | None = Field(description="entries not yet delivered, all partitions")
    pending: int = Field(description="delivered, not acknowledged")


class StreamsOut(BaseModel):
    groups: dict[str, GroupOut]
    dead_letters: int


class StatsOut(BaseModel):
    generated_at: str
    cached: bool
    age_s: float
    compute_ms: float
    incomplete: list[str] = Field(description="parts over their time budget (their fields null)")
    players: PlayersOut
    purchases: PurchasesOut
    gold: GoldOut
    idempotency: IdempotencyOut
    outbox: OutboxOut
    streams: StreamsOut


@bp.get("/api/admin/stats")
@doc(
    "Players, DAU, purchases and success %, gold in circulation against the ledger,"
    " idempotent-replay ratio, outbox and stream lag per consumer group; cached 5 s for"
    " all web processes (fresh=1 computes now)",
    response=StatsOut,
    tags=("admin",),
    errors=(403,),
)
@auth_required(admin=True)
@validate(query=StatsQuery)
def admin_stats(query: StatsQuery) -> Any:
    return stats.get(get_settings(), fresh=query.fresh)
