"""The player catalog (``GET /api/shop/catalog``), the dashboard's ``shop_highlights`` and
the profile's inventory, against real PostgreSQL and Redis.

The catalog is a per-process copy valid while the content and stock versions (and the
Redis generation token) are unchanged and no product window opened or closed. Tests
prove it is a cache by changing a row behind its back (no version bump: still the old
copy), then prove each invalidation path serves the change on the very next read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ccweb import clock as app_clock
from ccweb import effects
from ccweb.dashboard.cache import view_key
from ccweb.db import in_transaction
from ccweb.metrics import SHOP_STOCK_LEVEL
from ccweb.player_versions import shop_stock_key
from ccweb.shop.products import insert_product
from ccweb.shop.schemas import ProductIn
from tests.factories import auth_headers, create_user
from tests.integration.test_liveops_admin import admin, admin_user, scalar

__all__ = ["admin", "admin_user"]  # fixtures shared with the LiveOps admin tests

# SPEC §3's catalog fields plus description, points_price and items
CATALOG_KEYS = set(
    "id sku name description category price_gold points_price gold_amount items limit_once"
    " stock_remaining starts_at ends_at tier_required".split()
)


def product(
    sku: str, *, starts_in_s: float | None = None, ends_in_s: float | None = None, **fields: Any
) -> dict[str, Any]:
    """A valid product body (a package by default) whose window is relative to the
    application's clock."""
    body: dict[str, Any] = {
        "sku": sku,
        "name": sku.replace("_", " ").title(),
        "category": "package",
        "price_gold": 100,
        "gold_amount": 150,
        **fields,
    }
    now = app_clock.utcnow()
    if starts_in_s is not None:
        body["starts_at"] = now + timedelta(seconds=starts_in_s)
    if ends_in_s is not None:
        body["ends_at"] = now + timedelta(seconds=ends_in_s)
    return body


def insert(body: dict[str, Any]) -> int:
    """Insert directly, WITHOUT the version bumps an admin write makes (content: the
    catalog's cache cannot know)."""
    fields = ProductIn.model_validate(body).fields()
    new_id = in_transaction(lambda s: insert_product(s, fields))
    assert new_id is not None
    return new_id


def set_stock(product_id: int, remaining: int, *, bump: bool) -> None:
    """What a purchase does to a limited product: change the stock in a unit of work and
    (normally) bump the stock version after commit."""

    def tx(s):  # type: ignore[no-untyped-def]
        s.execute(
            text("UPDATE shop_products SET stock_remaining = :r WHERE id = :id"),
            {"r": remaining, "id": product_id},
        )
        if bump:
            effects.of(s).bump(shop_stock_key())

    in_transaction(tx)


def catalog(client, headers) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    resp = client.get("/api/shop/catalog", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    out: list[dict[str, Any]] = resp.get_json()
    return out


def skus(items: list[dict[str, Any]]) -> list[str]:
    return [p["sku"] for p in items]


@pytest.fixture
def player(client) -> dict[str, str]:
    return auth_headers(client, create_user())


def test_lists_active_products_in_window_in_sort_order_with_the_spec_shape(client, player):
    insert(product("b_second", sort_order=20))
    insert(product("a_first", sort_order=10, starts_in_s=-60, ends_in_s=3600))
    insert(product("hidden", sort_order=1, is_active=False))
    insert(product("future", sort_order=1, starts_in_s=600))
    insert(product("ended", sort_order=1, starts_in_s=-7200, ends_in_s=-60))
    insert(product("limited", sort_order=30, stock=7, tier_required="VIP", limit_once=True))
    insert(
        product(
            "conv_x",
            sort_order=40,
            category="conversion",
            price_gold=0,
            points_price=1000,
            gold_amount=9000,
        )
    )
    items = catalog(client, player)
    assert skus(items) == ["a_first", "b_second", "limited", "conv_x"]
    assert all(set(p) == CATALOG_KEYS for p in items)
    first, second, limited, conv = items
    assert first["starts_at"].endswith("Z") and first["ends_at"].endswith("Z")
    assert second["starts_at"] is None and second["stock_remaining"] is None
    assert limited["stock_remaining"] == 7 and limited["tier_required"] == "VIP"
    assert limited["limit_once"] is True
    assert conv["points_price"] == 1000 and conv["price_gold"] == 0
    assert SHOP_STOCK_LEVEL.labels(sku="limited")._value.get() == 7


def test_needs_a_login(client):
    assert client.get("/api/shop/catalog").status_code == 401


def test_etag_and_304(client, player):
    insert(product("one"))
    first = client.get("/api/shop/catalog", headers=player)
    etag = first.headers["ETag"]
    again = client.get("/api/shop/catalog", headers={**player, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = client.get("/api/shop/catalog", headers={**player, "If-None-Match": '"x"'})
    assert other.status_code == 200 and other.get_json() == first.get_json()


def test_cached_until_an_admin_write_which_the_next_read_shows(client, player, admin):
    pid = insert(product("pack", price_gold=100))
    catalog(client, player)  # renders (and creates the generation token)
    assert catalog(client, player)[0]["price_gold"] == 100  # cached from here on
    in_transaction(lambda s: s.execute(text("UPDATE shop_products SET name = 'behind'")))
    assert catalog(client, player)[0]["name"] == "Pack"  # the copy, not the row
    resp = client.put(f"/api/admin/products/{pid}", json={"price_gold": 250}, headers=admin)
    assert resp.status_code == 200
    after = catalog(client, player)[0]
    assert after["price_gold"] == 250 and after["name"] == "behind"

    created = client.post("/api/admin/products", json=product("new_one"), headers=admin)
    assert created.status_code == 201
    assert skus(catalog(client, player)) == ["pack", "new_one"]  # same sort_order: by id
    client.put(f"/api/admin/products/{pid}", json={"is_active": False}, headers=admin)
    assert skus(catalog(client, player)) == ["new_one"]


def test_a_stock_change_with_its_bump_shows_on_the_next_read(client, player):
    pid = insert(product("limited", stock=10))
    catalog(client, player)
    assert catalog(client, player)[0]["stock_remaining"] == 10
    set_stock(pid, 9, bump=False)
    assert catalog(client, player)[0]["stock_remaining"] == 10  # cached: nobody said
    set_stock(pid, 8, bump=True)
    assert catalog(client, player)[0]["stock_remaining"] == 8
    assert SHOP_STOCK_LEVEL.labels(sku="limited")._value.get() == 8
    set_stock(pid, 0, bump=True)
    assert catalog(client, player)[0]["stock_remaining"] == 0  # sold out, still listed


def test_the_copy_expires_when_a_window_opens_or_closes(client, player, clock):
    insert(product("soon", starts_in_s=600, sort_order=1))
    insert(product("closing", ends_in_s=300, sort_order=2))
    catalog(client, player)
    assert skus(catalog(client, player)) == ["closing"]
    clock.advance(299)
    assert skus(catalog(client, player)) == ["closing"]
    clock.advance(2)
    assert skus(catalog(client, player)) == []
    clock.advance(300)
    assert skus(catalog(client, player)) == ["soon"]


def test_no_copy_outlives_a_redis_flush(client, player, rds):
    """Versions restart from nothing when Redis loses its data; the generation token
    keeps a copy stamped before the loss from matching the new counters."""
    insert(product("pack"))
    catalog(client, player)
    catalog(client, player)
    in_transaction(lambda s: s.execute(text("UPDATE shop_products SET name = 'after flush'")))
    rds.flushdb()
    assert catalog(client, player)[0]["name"] == "after flush"


# ---------------------------------------------------------------------------- dashboard


def highlights(client, headers) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    resp = client.get("/api/dashboard", headers=headers)
    assert resp.status_code == 200
    out: list[dict[str, Any]] = resp.get_json()["shop_highlights"]
    return out


def test_highlights_are_three_buyable_products_highlighted_first(client):
    insert(product("plain_a", sort_order=1))
    insert(product("star_b", sort_order=5, highlight=True))
    insert(product("star_premium", sort_order=2, highlight=True, tier_required="PREMIUM"))
    insert(product("sold_out", sort_order=0, highlight=True, stock=0))
    insert(product("inactive", sort_order=0, highlight=True, is_active=False))
    insert(product("later", sort_order=0, highlight=True, starts_in_s=3600))
    insert(product("plain_c", sort_order=3))
    insert(product("plain_d", sort_order=4))
    standard = auth_headers(client, create_user(tier="STANDARD"))
    premium = auth_headers(client, create_user(tier="PREMIUM"))
    vip = auth_headers(client, create_user(tier="VIP"))
    got = highlights(client, standard)
    assert skus(got) == ["star_b", "plain_a", "plain_c"]
    assert all(set(p) == CATALOG_KEYS for p in got)
    assert skus(highlights(client, premium)) == ["star_premium", "star_b", "plain_a"]
    assert skus(highlights(client, vip)) == ["star_premium", "star_b", "plain_a"]


def test_the_cached_dashboard_lives_no_longer_than_the_next_product_window(client, rds):
    user = create_user()
    headers = auth_headers(client, user)
    insert(product("soon", starts_in_s=600))
    highlights(client, headers)
    ttl_ms = rds.pttl(view_key(user["id"], "dashboard"))
    assert 0 < ttl_ms <= 600_000


def test_an_admin_edit_re_renders_the_cached_dashboard(client, admin):
    headers = auth_headers(client, create_user())
    pid = insert(product("pack"))
    assert highlights(client, headers)[0]["price_gold"] == 100
    client.put(f"/api/admin/products/{pid}", json={"price_gold": 120}, headers=admin)
    assert highlights(client, headers)[0]["price_gold"] == 120


def test_profile_lists_inventory_and_purchases_count(client):
    user = create_user()
    headers = auth_headers(client, user)
    empty = client.get("/api/profile", headers=headers).get_json()
    assert empty["inventory"] == [] and empty["purchases_count"] == 0
    in_transaction(
        lambda s: s.execute(
            text(
                "INSERT INTO user_items (user_id, item_code, quantity) VALUES"
                " (:u, 'spin_ticket', 5), (:u, 'lucky_charm', 1), (:u, 'used_up', 0)"
            ),
            {"u": user["id"]},
        )
    )
    in_transaction(lambda s: effects.of(s).touch(user["id"]))
    p = client.get("/api/profile", headers=headers).get_json()
    assert p["inventory"] == [
        {"item_code": "lucky_charm", "quantity": 1},
        {"item_code": "spin_ticket", "quantity": 5},
    ]
    assert scalar("SELECT count(*) FROM user_items") == 3


def test_seeded_catalog_and_highlights(client, seeded):
    demo = {"site_id": "demo1", "password": "demo-pass-1234"}  # STANDARD
    headers = auth_headers(client, demo)
    items = catalog(client, headers)
    by_sku = {p["sku"]: p for p in items}
    assert {"pkg_starter", "pkg_limited_weekend", "item_lucky_charm", "conv_points_1000"} <= set(
        by_sku
    )
    assert by_sku["pkg_limited_weekend"]["stock_remaining"] == 10
    got = highlights(client, headers)
    assert len(got) == 3 and "pkg_premium_vault" not in skus(got)
    premium = auth_headers(client, {"site_id": "demo2", "password": "demo-pass-1234"})
    assert "pkg_premium_vault" in skus(highlights(client, premium))


# ---------------------------------------------------------------------------- purchases


def buy(client, headers, product_id: int, key: str):  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/shop/purchase",
        json={"product_id": product_id, "idempotency_key": key},
        headers=headers,
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_purchase_moves_the_catalog_stock_and_hides_a_bought_starter_pack(client):
    user = create_user(gold=5000)
    headers = auth_headers(client, user)
    other = auth_headers(client, create_user(gold=5000))
    limited = insert(product("limited", stock=3, sort_order=1))
    starter = insert(
        product(
            "starter",
            limit_once=True,
            highlight=True,
            sort_order=2,
            items=[{"code": "lucky_charm", "quantity": 2}],
        )
    )
    catalog(client, headers)
    assert catalog(client, headers)[0]["stock_remaining"] == 3  # cached
    buy(client, headers, limited, "k-limited")
    assert catalog(client, headers)[0]["stock_remaining"] == 2
    assert skus(highlights(client, headers)) == ["starter", "limited"]

    buy(client, headers, starter, "k-starter")
    assert skus(highlights(client, headers)) == ["limited"]  # bought once: gone for them
    assert skus(highlights(client, other)) == ["starter", "limited"]  # not for others
    assert "starter" in skus(catalog(client, headers))  # the catalog is everyone's
    p = client.get("/api/profile", headers=headers).get_json()
    assert p["inventory"] == [{"item_code": "lucky_charm", "quantity": 2}]
    assert p["purchases_count"] == 2
