"""Operator CRUD for shop products (``/api/admin/products``).

Every write records an audit row (``product.create`` / ``product.update``) and, after
commit, bumps the content version, so the player catalog and the cached dashboards
render again (:mod:`ccweb.shop.catalog`); a write that sets ``stock`` bumps the stock
version too.

An update locks the product ``FOR UPDATE`` first: a purchase statement decrementing the
stock waits for the edit (or the edit for it), so resetting the stock never loses a
concurrent sale's decrement into the new number, and the category shape is checked on
the merged row the update will leave (a 400 with the reason, not a CHECK violation).
Every update bumps ``version`` (a price change included), which is what the optional
``version`` of an update is checked against. Purchases copy the price, grant and sku
into their own row and receipt, so editing a product never rewrites a sold receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.admin import audit, crud
from ccweb.errors import Duplicate, ValidationFailed
from ccweb.events import iso
from ccweb.player_versions import shop_stock_key
from ccweb.shop.catalog import product_out
from ccweb.shop.schemas import shape_problems

TABLE = "shop_products"
JSON_COLUMNS = ("items",)
COLUMNS = (
    "sku",
    "name",
    "description",
    "category",
    "price_gold",
    "points_price",
    "gold_amount",
    "items",
    "limit_once",
    "stock_total",
    "stock_remaining",
    "starts_at",
    "ends_at",
    "tier_required",
    "is_active",
    "highlight",
    "sort_order",
)
# Purchases per product (how many and how many units), for the operator's reads only.
# Sold counts per listed product are an index scan (ix_shop_purchases_product_id).
_SELECT = """
    SELECT d.*, c.* FROM shop_products d
    LEFT JOIN LATERAL (
        SELECT count(*) AS sold_purchases, coalesce(sum(p.quantity), 0) AS sold_quantity
        FROM shop_purchases p WHERE p.product_id = d.id
    ) c ON true
"""


def product_def_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """The admin shape: the catalog shape plus operator fields and sales."""
    return {
        **product_out(row),
        "stock_total": row["stock_total"],
        "is_active": row["is_active"],
        "highlight": row["highlight"],
        "sort_order": row["sort_order"],
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "sold": {
            "purchases": int(row["sold_purchases"] or 0),
            "quantity": int(row["sold_quantity"] or 0),
        },
    }


def insert_product(session: Session, fields: Mapping[str, Any]) -> int | None:
    """Insert a product (no audit, no effects: the seed and :func:`create_product`
    add those); None when its ``sku`` is taken."""
    return crud.insert_unique(
        session, TABLE, {k: fields[k] for k in COLUMNS if k in fields}, JSON_COLUMNS, unique="sku"
    )


def create_product(session: Session, *, admin_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    product_id = insert_product(session, fields)
    if product_id is None:
        raise Duplicate("a product with this sku exists", details={"sku": fields["sku"]})
    audit.record(session, admin_id, "product.create", "product", product_id, crud.jsonable(fields))
    fx = effects.of(session)
    fx.touch_content()
    if fields.get("stock_total") is not None:
        fx.bump(shop_stock_key())
    return get_product(session, product_id)


def update_product(
    session: Session,
    *,
    admin_id: int,
    product_id: int,
    fields: Mapping[str, Any],
    version: int | None,
) -> dict[str, Any]:
    row = crud.lock_row(session, TABLE, product_id, "product")
    crud.check_version(row, version)
    if fields.get("sku", row["sku"]) != row["sku"]:
        raise ValidationFailed(
            "sku cannot change (it names the product on receipts); create a new product",
            details={"sku": row["sku"]},
        )
    merged = {**row, **fields}
    problems = shape_problems(merged)
    if merged["starts_at"] and merged["ends_at"] and merged["ends_at"] <= merged["starts_at"]:
        problems.append("ends_at must be after starts_at")
    if problems:
        raise ValidationFailed("; ".join(problems), details={"problems": problems})
    crud.update_row(session, TABLE, product_id, fields, JSON_COLUMNS, versioned=True)
    audit.record(
        session,
        admin_id,
        "product.update",
        "product",
        product_id,
        {"changes": crud.jsonable(fields), "version": row["version"] + 1},
    )
    fx = effects.of(session)
    fx.touch_content()
    if "stock_remaining" in fields:
        fx.bump(shop_stock_key())
    return get_product(session, product_id)


def get_product(session: Session, product_id: int) -> dict[str, Any]:
    return product_def_out(crud.one_row(session, _SELECT, product_id, "product"))


def list_products(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = crud.many_rows(session, _SELECT, "d.sort_order, d.id", active, limit, offset)
    return {"items": [product_def_out(r) for r in rows]}
