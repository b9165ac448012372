"""The player catalog: products on sale now (first, uncached version)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from ccweb import clock
from ccweb.db import autocommit
from ccweb.events import iso


def product_out(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "price_gold": row["price_gold"],
        "points_price": row["points_price"],
        "gold_amount": row["gold_amount"],
        "items": row["items"],
        "limit_once": row["limit_once"],
        "stock_remaining": row["stock_remaining"],
        "starts_at": iso(row["starts_at"]) if row["starts_at"] else None,
        "ends_at": iso(row["ends_at"]) if row["ends_at"] else None,
        "tier_required": row["tier_required"],
    }


def catalog_json() -> str:
    with autocommit() as conn:
        rows = conn.execute(
            text(
                "SELECT * FROM shop_products WHERE is_active"
                " AND (starts_at IS NULL OR starts_at <= :now)"
                " AND (ends_at IS NULL OR ends_at > :now) ORDER BY sort_order, id"
            ),
            {"now": clock.utcnow()},
        ).mappings()
        return json.dumps([product_out(r) for r in rows], separators=(",", ":"))
