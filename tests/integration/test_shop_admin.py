"""Operator CRUD for shop products (``/api/admin/products``) and the seeded products,
against real PostgreSQL and Redis: shapes, validation that stores nothing, DUPLICATE,
versions, stock resets, audit rows and the content/stock version bumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import seed
from ccweb.db import in_transaction
from ccweb.player_versions import content_key, shop_stock_key
from tests.factories import auth_headers, create_user
from tests.integration.test_liveops_admin import admin, admin_user, err, q, scalar

__all__ = ["admin", "admin_user"]  # fixtures shared with the LiveOps admin tests

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


PACKAGE: dict[str, Any] = {
    "sku": "pkg_test",
    "name": "Test Pack",
    "category": "package",
    "price_gold": 1000,
    "gold_amount": 1500,
    "limit_once": False,
    "stock": 10,
    "starts_at": iso(NOW - timedelta(hours=1)),
    "ends_at": iso(NOW + timedelta(days=7)),
    "tier_required": "STANDARD",
    "items": [{"code": "lucky_charm", "quantity": 2}],
    "highlight": True,
    "sort_order": 5,
}
ITEM = {
    "sku": "item_test",
    "name": "Test Item",
    "category": "item",
    "price_gold": 300,
    "items": [{"code": "spin_ticket", "quantity": 5}],
}
CONVERSION = {
    "sku": "conv_test",
    "name": "Points to gold",
    "category": "conversion",
    "points_price": 1000,
    "gold_amount": 10000,
}


def create(client, admin, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/api/admin/products", json=body, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def test_create_returns_the_product_stores_it_audits_and_bumps_versions(
    client, admin, admin_user, rds
):
    p = create(client, admin, PACKAGE)
    assert p["sku"] == "pkg_test" and p["category"] == "package"
    assert p["price_gold"] == 1000 and p["gold_amount"] == 1500 and p["points_price"] == 0
    assert p["items"] == [{"code": "lucky_charm", "quantity": 2}]
    assert p["stock_total"] == 10 and p["stock_remaining"] == 10
    assert p["starts_at"] == PACKAGE["starts_at"] and p["ends_at"] == PACKAGE["ends_at"]
    assert p["tier_required"] == "STANDARD" and p["is_active"] is True
    assert p["highlight"] is True and p["sort_order"] == 5 and p["version"] == 1
    assert p["sold"] == {"purchases": 0, "quantity": 0} and p["description"] is None
    row = q("SELECT * FROM shop_products")[0]
    assert row["id"] == p["id"] and row["stock_remaining"] == 10 and row["stock_total"] == 10
    audit = q("SELECT admin_id, action, target_type, target_id, payload FROM admin_audit")
    assert len(audit) == 1
    assert audit[0]["admin_id"] == admin_user["id"] and audit[0]["action"] == "product.create"
    assert audit[0]["target_type"] == "product" and audit[0]["target_id"] == p["id"]
    assert audit[0]["payload"]["sku"] == "pkg_test" and audit[0]["payload"]["stock_total"] == 10
    assert rds.get(content_key()) == "1" and rds.get(shop_stock_key()) == "1"

    unlimited = create(client, admin, ITEM)
    assert unlimited["stock_remaining"] is None and unlimited["stock_total"] is None
    assert unlimited["starts_at"] is None and unlimited["ends_at"] is None
    assert rds.get(content_key()) == "2" and rds.get(shop_stock_key()) == "1"  # no stock
    conv = create(client, admin, CONVERSION)
    assert conv["price_gold"] == 0 and conv["points_price"] == 1000 and conv["items"] == []


def test_get_and_list_with_filter_paging_and_sold_counts(client, admin):
    a = create(client, admin, {**PACKAGE, "sort_order": 2})
    b = create(client, admin, {**ITEM, "sort_order": 1, "is_active": False})
    c = create(client, admin, {**CONVERSION, "sort_order": 3})
    buyer = create_user()
    for n, qty in ((1, 2), (2, 3)):
        in_transaction(
            lambda s, n=n, qty=qty: s.execute(
                text(
                    "INSERT INTO shop_purchases (user_id, product_id, idempotency_key, sku,"
                    " category, quantity, price_gold, points_price, gold_amount, gold_delta,"
                    " items, limit_once, receipt, integrity_hash, signature, signature_version,"
                    " response) VALUES (:u, :p, :k, 'pkg_test', 'package', :qty, 0, 0, 0, 0,"
                    " '[]', false, '{}', 'h', 's', 1, '{}')"
                ),
                {"u": buyer["id"], "p": a["id"], "k": f"k{n}", "qty": qty},
            )
        )
    one = client.get(f"/api/admin/products/{a['id']}", headers=admin)
    assert one.status_code == 200 and one.get_json()["sold"] == {"purchases": 2, "quantity": 5}
    everything = client.get("/api/admin/products", headers=admin).get_json()["items"]
    assert [p["id"] for p in everything] == [b["id"], a["id"], c["id"]]
    active = client.get("/api/admin/products?active=true", headers=admin).get_json()["items"]
    assert [p["id"] for p in active] == [a["id"], c["id"]]
    inactive = client.get("/api/admin/products?active=false", headers=admin).get_json()["items"]
    assert [p["id"] for p in inactive] == [b["id"]]
    page = client.get("/api/admin/products?limit=1&offset=1", headers=admin).get_json()["items"]
    assert [p["id"] for p in page] == [a["id"]]
    assert client.get("/api/admin/products/999999", headers=admin).status_code == 404
    assert client.get("/api/admin/products?limit=0", headers=admin).status_code == 400


def test_update_changes_only_sent_fields_bumps_version_and_audits(client, admin, rds):
    p = create(client, admin, PACKAGE)
    stock_before = rds.get(shop_stock_key())
    resp = client.put(
        f"/api/admin/products/{p['id']}", json={"price_gold": 900, "version": 1}, headers=admin
    )
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["price_gold"] == 900 and out["version"] == 2
    assert out["gold_amount"] == 1500 and out["stock_remaining"] == 10  # untouched
    assert rds.get(content_key()) == "2" and rds.get(shop_stock_key()) == stock_before
    stale = client.put(
        f"/api/admin/products/{p['id']}", json={"price_gold": 800, "version": 1}, headers=admin
    )
    assert stale.status_code == 409 and err(stale) == "VERSION_CONFLICT"
    assert scalar("SELECT price_gold FROM shop_products") == 900
    audit = q("SELECT action, payload FROM admin_audit WHERE action = 'product.update'")
    assert audit == [
        {"action": "product.update", "payload": {"changes": {"price_gold": 900}, "version": 2}}
    ]

    # the whole read shape sent back (same sku, read-only fields ignored) is accepted
    again = client.put(f"/api/admin/products/{p['id']}", json=out, headers=admin)
    assert again.status_code == 200 and again.get_json()["version"] == 3
    renamed = client.put(f"/api/admin/products/{p['id']}", json={"sku": "other"}, headers=admin)
    assert renamed.status_code == 400 and scalar("SELECT sku FROM shop_products") == "pkg_test"
    missing = client.put("/api/admin/products/999999", json={"name": "x"}, headers=admin)
    assert missing.status_code == 404


def test_setting_stock_resets_total_and_remaining_and_bumps_stock(client, admin, rds):
    p = create(client, admin, PACKAGE)
    in_transaction(lambda s: s.execute(text("UPDATE shop_products SET stock_remaining = 3")))
    resp = client.put(f"/api/admin/products/{p['id']}", json={"stock": 50}, headers=admin)
    assert resp.status_code == 200
    assert (resp.get_json()["stock_total"], resp.get_json()["stock_remaining"]) == (50, 50)
    assert rds.get(shop_stock_key()) == "2"
    unlimited = client.put(f"/api/admin/products/{p['id']}", json={"stock": None}, headers=admin)
    assert unlimited.get_json()["stock_remaining"] is None
    assert q("SELECT stock_total, stock_remaining FROM shop_products") == [
        {"stock_total": None, "stock_remaining": None}
    ]


def test_duplicate_sku_is_409_and_stores_nothing(client, admin):
    create(client, admin, PACKAGE)
    again = client.post("/api/admin/products", json={**ITEM, "sku": "pkg_test"}, headers=admin)
    assert again.status_code == 409 and err(again) == "DUPLICATE"
    assert scalar("SELECT count(*) FROM shop_products") == 1
    assert scalar("SELECT count(*) FROM admin_audit") == 1


BAD_CREATES = [
    {**PACKAGE, "category": "gift"},
    {**PACKAGE, "price_gold": 0},  # a gold product must cost gold
    {**PACKAGE, "points_price": 5},  # only conversions cost points
    {**PACKAGE, "gold_amount": 0, "items": []},  # grants nothing
    {**ITEM, "items": []},  # an item grants items
    {**ITEM, "gold_amount": 100},  # ... and no gold
    {**CONVERSION, "price_gold": 10},
    {**CONVERSION, "points_price": 0},
    {**CONVERSION, "gold_amount": 0},
    {**CONVERSION, "items": [{"code": "lucky_charm", "quantity": 1}]},
    {**ITEM, "items": [{"code": "Bad Code!", "quantity": 1}]},
    {**ITEM, "items": [{"code": "x", "quantity": 1}]},
    {**ITEM, "items": [{"code": "ok_code", "quantity": 0}]},
    {**ITEM, "items": [{"code": "ok_code", "quantity": 1_000_001}]},
    {**ITEM, "items": [{"code": "dup", "quantity": 1}, {"code": "dup", "quantity": 2}]},
    {**PACKAGE, "price_gold": 10**9 + 1},
    {**PACKAGE, "gold_amount": -1},
    {**PACKAGE, "price_gold": "1000"},
    {**PACKAGE, "stock": -1},
    {**PACKAGE, "ends_at": PACKAGE["starts_at"]},
    {**PACKAGE, "starts_at": "2026-01-01T00:00:00"},  # no timezone
    {**PACKAGE, "tier_required": "GOLD"},
    {**PACKAGE, "sku": "Has Spaces"},
    {**PACKAGE, "name": ""},
    {k: v for k, v in PACKAGE.items() if k != "sku"},
]


@pytest.mark.parametrize("body", BAD_CREATES)
def test_bad_create_bodies_are_400_and_store_nothing(client, admin, rds, body):
    resp = client.post("/api/admin/products", json=body, headers=admin)
    assert resp.status_code == 400 and err(resp) == "VALIDATION_ERROR", resp.get_json()
    assert scalar("SELECT count(*) FROM shop_products") == 0
    assert scalar("SELECT count(*) FROM admin_audit") == 0
    assert rds.get(content_key()) is None


BAD_UPDATES = [
    {"category": "conversion"},  # the merged row: price_gold > 0, no points
    {"category": "item"},  # a package with gold becomes an item with gold
    {"price_gold": 0},
    {"items": [], "gold_amount": 0},
    {"ends_at": iso(NOW - timedelta(days=1))},  # before the stored starts_at
    {"name": None},
    {"stock": -5},
    {},
    {"version": 1},
]


@pytest.mark.parametrize("body", BAD_UPDATES)
def test_bad_updates_are_400_and_change_nothing(client, admin, body):
    p = create(client, admin, PACKAGE)
    before = q("SELECT * FROM shop_products")
    resp = client.put(f"/api/admin/products/{p['id']}", json=body, headers=admin)
    assert resp.status_code == 400 and err(resp) == "VALIDATION_ERROR", resp.get_json()
    assert q("SELECT * FROM shop_products") == before
    assert scalar("SELECT count(*) FROM admin_audit WHERE action = 'product.update'") == 0


def test_a_category_change_with_the_right_shape_is_accepted(client, admin):
    p = create(client, admin, PACKAGE)
    resp = client.put(
        f"/api/admin/products/{p['id']}",
        json={"category": "conversion", "price_gold": 0, "points_price": 500, "items": []},
        headers=admin,
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["category"] == "conversion"


def test_non_admins_get_401_or_403_and_nothing_changes(client, admin):
    p = create(client, admin, PACKAGE)
    player = auth_headers(client, create_user())
    calls = [
        ("post", "/api/admin/products", {**ITEM}),
        ("put", f"/api/admin/products/{p['id']}", {"price_gold": 1}),
        ("get", "/api/admin/products", None),
        ("get", f"/api/admin/products/{p['id']}", None),
    ]
    for method, path, body in calls:
        anon = getattr(client, method)(path, json=body)
        assert anon.status_code == 401, (method, path)
        resp = getattr(client, method)(path, json=body, headers=player)
        assert resp.status_code == 403 and err(resp) == "FORBIDDEN", (method, path)
    assert q("SELECT sku, price_gold FROM shop_products") == [
        {"sku": "pkg_test", "price_gold": 1000}
    ]


def test_seed_adds_every_category_once_and_keeps_operator_edits(seeded):
    rows = {r["sku"]: r for r in q("SELECT * FROM shop_products")}
    assert {r["category"] for r in rows.values()} == {"item", "package", "conversion"}
    weekend, starter = rows["pkg_limited_weekend"], rows["pkg_starter"]
    assert weekend["stock_total"] == weekend["stock_remaining"] == 10
    assert weekend["starts_at"] is not None and weekend["ends_at"] > weekend["starts_at"]
    assert starter["limit_once"] and starter["gold_amount"] > 0 and starter["items"]
    assert rows["item_lucky_charm"]["items"] == [{"code": "lucky_charm", "quantity": 1}]
    assert any(r["tier_required"] == "PREMIUM" for r in rows.values())
    assert len([s for s in rows if s.startswith("conv_points_")]) >= 2
    assert 2 <= sum(r["highlight"] for r in rows.values()) <= 3
    in_transaction(
        lambda s: s.execute(
            text("UPDATE shop_products SET stock_remaining = 0 WHERE sku = 'pkg_limited_weekend'")
        )
    )
    in_transaction(seed.run)
    assert scalar("SELECT count(*) FROM shop_products") == len(rows)
    assert (
        scalar("SELECT stock_remaining FROM shop_products WHERE sku = 'pkg_limited_weekend'") == 0
    )
