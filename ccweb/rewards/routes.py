"""Player view of the ledger: ``GET /api/rewards/history``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from pydantic import Field

from ccweb.auth.guard import auth_required
from ccweb.db import unit_of_work
from ccweb.events import iso
from ccweb.http.validation import MAX_ID, QuerySchema, doc, validate
from ccweb.wallet import ledger

bp = Blueprint("rewards", __name__, url_prefix="/api/rewards")


class HistoryQuery(QuerySchema):
    limit: int = Field(default=50, ge=1, le=200)
    before_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def ledger_row_out(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "source_type": r["source_type"],
        "source_id": r["source_id"],
        "delta_gold": r["delta_gold"],
        "balance_after": r["balance_after"],
        "reason": r["reason"],
        "created_at": iso(r["created_at"]),
    }


@bp.get("/history")
@doc("Ledger rows of the current player, newest first")
@auth_required
@validate(query=HistoryQuery)
def history(query: HistoryQuery) -> Any:
    with unit_of_work() as s:
        rows = ledger.history(s, g.user_id, query.limit, query.before_id)
    return {
        "items": [ledger_row_out(r) for r in rows],
        "next_before_id": rows[-1]["id"] if len(rows) == query.limit else None,
    }
