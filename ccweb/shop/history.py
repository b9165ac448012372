"""A player's purchases as they see them: newest first, each with its receipt."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.events import iso


def purchase_out(r: Any) -> dict[str, Any]:
    return {
        "tx_id": r["id"],
        "status": r["status"],
        "product_id": r["product_id"],
        "sku": r["sku"],
        "category": r["category"],
        "quantity": r["quantity"],
        "price_gold": r["price_gold"],
        "points_price": r["points_price"],
        "gold_amount": r["gold_amount"],
        "gold_delta": r["gold_delta"],
        "items": r["items"],
        "settlement_status": r["settlement_status"],
        "settled_at": iso(r["settled_at"]),
        "reversed_gold": r["reversed_gold"],
        "unrecovered_gold": r["unrecovered_gold"],
        "receipt": {
            "integrity_hash": r["integrity_hash"],
            "signature": r["signature"],
            "signature_version": r["signature_version"],
            "document": r["receipt"],
        },
        "created_at": iso(r["created_at"]),
    }


def purchases_of(
    conn: Connection, user_id: int, limit: int, before_id: int | None = None
) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            """
            SELECT * FROM shop_purchases
            WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"uid": user_id, "before": before_id, "limit": limit},
    ).mappings()
    return [purchase_out(r) for r in rows]
