"""Request models of the operator API for shop products (``/api/admin/products``).

The create body is SPEC §3's (``sku, name, category, price_gold, gold_amount,
limit_once, stock, starts_at, ends_at, tier_required``) plus ``description``,
``points_price`` (conversions), ``items``, ``is_active``, ``highlight``, ``sort_order``.
``stock`` null means unlimited; a number sets both the total and the remaining stock.
``starts_at`` / ``ends_at`` null leave that side of the window open.

``PUT /api/admin/products/<id>`` takes the same fields, all optional: only the fields
sent change (so a client may send back the whole read shape, or just ``{"price_gold":
900}``). ``sku`` is the product's identity on receipts and cannot change (sending the
current one is fine). ``version`` is an optional optimistic check (409
``VERSION_CONFLICT``).

The category shapes mirror the table's CHECK constraints (:mod:`ccweb.shop.models`) and
are checked here and, for an update, on the merged row (:func:`shape_problems`), so a bad
shape is a 400 with the reason, never a database error:

* ``item``: costs ``price_gold`` > 0, grants ``items`` (at least one) and no gold;
* ``package``: costs ``price_gold`` > 0, grants ``gold_amount`` and/or ``items``;
* ``conversion``: costs ``points_price`` > 0 external points, ``price_gold`` 0, grants
  ``gold_amount`` > 0 and no items (the settlement credits gold only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ccweb.http.validation import Schema
from ccweb.liveops.schemas import (
    Description,
    Instant,
    PatchSchema,
    SortOrder,
    Tier,
    Title,
    Version,
    window_ok,
)

Category = Literal["item", "package", "conversion"]
MAX_AMOUNT = 10**9  # any price, points price or gold grant
MAX_STOCK = 10**9  # the stock columns are int4
MAX_ITEM_QUANTITY = 1_000_000
ITEM_CODE = r"^[a-z0-9_.-]{2,64}$"
SKU = r"^[a-z0-9_.-]{2,64}$"

Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK, description="null = unlimited")]
Sku = Annotated[str, Field(pattern=SKU, description="stable identifier, unique")]


class ProductItem(Schema):
    code: str = Field(pattern=ITEM_CODE)
    quantity: int = Field(ge=1, le=MAX_ITEM_QUANTITY)


Items = Annotated[list[ProductItem], Field(max_length=10)]


def shape_problems(p: Mapping[str, Any]) -> list[str]:
    """What is wrong with a product's category shape (empty when it is right). ``p``
    holds ``category``, ``price_gold``, ``points_price``, ``gold_amount`` and ``items``
    (a list of ``{code, quantity}``)."""
    category, items = p["category"], p["items"] or []
    problems = []
    codes = [i["code"] for i in items]
    if len(set(codes)) != len(codes):
        problems.append("items: each code at most once")
    if category == "conversion":
        if p["price_gold"] != 0:
            problems.append("conversion: price_gold must be 0 (it costs points_price)")
        if p["points_price"] <= 0:
            problems.append("conversion: points_price must be > 0")
        if p["gold_amount"] <= 0:
            problems.append("conversion: gold_amount must be > 0")
        if items:
            problems.append("conversion: grants gold only, items must be empty")
        return problems
    if p["price_gold"] <= 0:
        problems.append(f"{category}: price_gold must be > 0")
    if p["points_price"] != 0:
        problems.append(f"{category}: points_price must be 0 (only conversions cost points)")
    if category == "item":
        if not items:
            problems.append("item: grants items, at least one")
        if p["gold_amount"] != 0:
            problems.append("item: gold_amount must be 0 (a package grants gold)")
    elif p["gold_amount"] <= 0 and not items:
        problems.append("package: grants gold_amount > 0 and/or items")
    return problems


def _items_out(items: list[ProductItem] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [i.model_dump() for i in items]


class ProductIn(Schema):
    sku: Sku
    name: Title
    category: Category
    price_gold: Amount = 0
    points_price: Amount = 0
    gold_amount: Amount = 0
    items: Items = []
    limit_once: bool = False
    stock: Stock | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    tier_required: Tier = "STANDARD"
    description: Description | None = None
    is_active: bool = True
    highlight: bool = False
    sort_order: SortOrder = 0

    @model_validator(mode="after")
    def _shape(self) -> ProductIn:
        window_ok(self.starts_at, self.ends_at)
        problems = shape_problems({**self.model_dump(), "items": _items_out(self.items)})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def fields(self) -> dict[str, Any]:
        """Column values (``stock`` becomes ``stock_total`` and ``stock_remaining``)."""
        data = self.model_dump(exclude={"stock"})
        data["items"] = _items_out(self.items)
        data["stock_total"] = data["stock_remaining"] = self.stock
        return data


class ProductPatch(PatchSchema):
    """Only the fields sent change; the merged row is checked again by the service."""

    nullable = frozenset({"description", "stock", "starts_at", "ends_at"})

    sku: Sku | None = None
    name: Title | None = None
    category: Category | None = None
    price_gold: Amount | None = None
    points_price: Amount | None = None
    gold_amount: Amount | None = None
    items: Items | None = None
    limit_once: bool | None = None
    stock: Stock | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    tier_required: Tier | None = None
    description: Description | None = None
    is_active: bool | None = None
    highlight: bool | None = None
    sort_order: SortOrder | None = None
    version: Version | None = None

    def changes(self) -> dict[str, Any]:
        """Column values of the fields sent (``stock`` → both stock columns)."""
        data = super().changes()
        if "items" in data:
            data["items"] = _items_out(self.items)
        if "stock" in data:
            data["stock_total"] = data["stock_remaining"] = data.pop("stock")
        return data
