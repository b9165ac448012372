"""The player catalog: products on sale now, rendered once and served from process memory.

Every player sees the same catalog (tier limits are shown, ``tier_required``, and
enforced by the purchase), so each web process keeps ONE rendered copy — the JSON body
and its ETag — stamped with the versions it was rendered at. A read costs one Redis
round trip (an MGET of three keys) and no database round trip while the copy is valid:

* ``content`` (:func:`ccweb.player_versions.content_key`) — bumped after commit by every
  admin write (``effects.of(session).touch_content()``);
* ``stock`` (:func:`ccweb.player_versions.shop_stock_key`) — bumped after commit by every
  change of a limited product's stock (``Effects.bump(shop_stock_key())``: purchases,
  an admin setting ``stock``);
* ``generation`` — a random token this module writes when it finds none. A version is a
  counter that starts again from nothing when Redis loses its data (a restart without
  persistence, a flush — every test does one); without the token, a copy rendered at
  ``content=3`` before the loss would be served again once the new counter reached 3.
  A new token never equals one a copy was stamped with, so no copy survives the loss.
  A read that finds no token renders, writes a token (``SET NX``) and caches nothing.

Why the copy is never stale: the versions are read BEFORE rendering (as
:mod:`ccweb.dashboard.cache` does). A writer bumps only after its commit, so a copy
stamped with versions V was rendered from data at least as new as every commit whose
bump is included in V; a commit that lands while we render bumps past V, and the next
read renders again. Writers never touch this cache.

Time: the copy also expires when the next product window opens or closes (computed in
the rendering query, judged with :mod:`ccweb.clock` like every window test here) and at
the latest after ``MAX_AGE_S`` — the bound on staleness if an after-commit bump was lost
(effects are best effort).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccweb import clock, pg, redis_flush
from ccweb.db import autocommit
from ccweb.events import iso
from ccweb.metrics import SHOP_STOCK_LEVEL
from ccweb.player_versions import content_key, shop_stock_key
from ccweb.redis_client import get_redis, key
from ccweb.users.models import TIERS

MAX_AGE_S = 60.0

# The columns of the player shape, shared by the catalog and the dashboard's highlights.
PRODUCT_COLUMNS = """p.id, p.sku, p.name, p.description, p.category, p.price_gold,
    p.points_price, p.gold_amount, p.items, p.limit_once, p.stock_remaining, p.starts_at,
    p.ends_at, p.tier_required, p.highlight, p.sort_order"""
ON_SALE = """p.is_active AND (p.starts_at IS NULL OR p.starts_at <= :now)
    AND (p.ends_at IS NULL OR p.ends_at > :now)"""
# When the next product window opens or closes: a rendered list of products on sale must
# not outlive that moment.
NEXT_WINDOW_CHANGE = """SELECT min(t) FROM (
        SELECT starts_at AS t FROM shop_products WHERE is_active AND starts_at > :now
        UNION ALL
        SELECT ends_at FROM shop_products WHERE is_active AND ends_at > :now) b"""
_TIERS_SQL = "ARRAY[" + ", ".join(f"'{t}'" for t in TIERS) + "]"  # constants, lowest first

# One statement: the products (as JSON, so an empty catalog still returns its row) and
# the next window change.
_CATALOG = f"""
    SELECT (SELECT coalesce(json_agg(x ORDER BY x.sort_order, x.id), '[]')
            FROM (SELECT {PRODUCT_COLUMNS} FROM shop_products p WHERE {ON_SALE}) x) AS products,
           ({NEXT_WINDOW_CHANGE}) AS next_window_change
"""
# What player :uid may buy now (product alias ``p``): on sale, in stock, tier allowed,
# and not a limit_once product they already bought (the partial unique index on
# limit_once purchases answers that). Shared by the highlights and the recommendations.
BUYABLE = f"""{ON_SALE}
    AND (p.stock_remaining IS NULL OR p.stock_remaining > 0)
    AND array_position({_TIERS_SQL}, p.tier_required)
        <= array_position({_TIERS_SQL}, (SELECT tier FROM users WHERE id = :uid))
    AND NOT (p.limit_once AND EXISTS (
        SELECT 1 FROM shop_purchases sp
        WHERE sp.user_id = :uid AND sp.product_id = p.id AND sp.limit_once))"""

# Up to three products player :uid may buy now, highlighted ones first: the dashboard's
# ``shop_highlights`` as one column of its own statement.
HIGHLIGHTS_SQL = f"""
    (SELECT coalesce(json_agg(x ORDER BY x.highlight DESC, x.sort_order, x.id), '[]')
     FROM (SELECT {PRODUCT_COLUMNS} FROM shop_products p
           WHERE {BUYABLE}
           ORDER BY p.highlight DESC, p.sort_order, p.id LIMIT 3) x) AS shop_rows,
    ({NEXT_WINDOW_CHANGE}) AS shop_next_window_change"""


def _instant(value: datetime | str | None) -> str | None:
    """Rows read as JSON carry PostgreSQL's text for a timestamp."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return iso(value)


def product_out(row: Any) -> dict[str, Any]:
    """The player shape of a product (SPEC §3 plus description, points and items)."""
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
        "starts_at": _instant(row["starts_at"]),
        "ends_at": _instant(row["ends_at"]),
        "tier_required": row["tier_required"],
    }


@dataclass(frozen=True, slots=True)
class CatalogView:
    body: str
    etag: str


@dataclass(frozen=True, slots=True)
class _Copy:
    stamp: tuple[Any, Any, Any]  # (generation, content, stock) as read from Redis
    view: CatalogView
    expires_at: float  # clock.time()


_copy: _Copy | None = None


def generation_key() -> str:
    return key("shop", "catalog", "gen")


def forget() -> None:
    """Drop this process's copy (the next read renders)."""
    global _copy
    _copy = None


def _render() -> tuple[CatalogView, float]:
    """The catalog now, and until when (``clock.time()``) it stays right by the clock
    alone: the next window change, at most ``MAX_AGE_S`` away."""
    now = clock.utcnow()
    with autocommit() as conn:
        row = pg.execute(conn, _CATALOG, {"now": now})[0]
    products = [product_out(r) for r in row["products"]]
    for p in products:
        if p["stock_remaining"] is not None:
            SHOP_STOCK_LEVEL.labels(sku=p["sku"]).set(p["stock_remaining"])
    body = json.dumps(products, separators=(",", ":"))
    etag = hashlib.sha256(body.encode()).hexdigest()[:24]
    expires_at = now.timestamp() + MAX_AGE_S
    if row["next_window_change"] is not None:
        expires_at = min(expires_at, row["next_window_change"].timestamp())
    return CatalogView(body, etag), expires_at


def catalog() -> CatalogView:
    """The catalog's JSON body and ETag, rendered only when the content or stock
    version changed, a window opened or closed, or the copy is ``MAX_AGE_S`` old."""
    global _copy
    gen_k = generation_key()
    stamp = tuple(get_redis().mget(gen_k, content_key(), shop_stock_key()))
    held = _copy
    if held is not None and held.stamp == stamp and clock.time() < held.expires_at:
        return held.view
    view, expires_at = _render()  # after reading the versions (module docstring)
    if stamp[0] is None:
        token = secrets.token_hex(8)
        redis_flush.run([lambda pipe: pipe.set(gen_k, token, nx=True)])
        return view
    _copy = _Copy((stamp[0], stamp[1], stamp[2]), view, expires_at)
    return view


def catalog_json() -> str:
    return catalog().body
