"""Shop tables: products, purchases (with their receipts), settlement callbacks, signing keys.

Money invariants live in the schema as well as in the code: a price or grant is never
negative, stock never goes below zero, a purchase key names one purchase per player, and a
``limit_once`` product has at most one purchase per player (partial unique index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

CATEGORIES = ("item", "package", "conversion")
SETTLEMENT_STATES = ("pending", "settled", "voided")
KEY_STATES = ("current", "previous", "retired")


class Product(Base):
    """Something the shop sells.

    * ``item``: costs ``price_gold``, grants ``items`` (inventory, ``user_items``);
    * ``package``: costs ``price_gold``, grants ``gold_amount`` bonus gold and/or ``items``;
    * ``conversion``: costs ``points_price`` external points (settled by the payment
      provider, see :mod:`ccweb.shop.settlement`), grants ``gold_amount``.

    ``stock_remaining`` NULL means unlimited; otherwise it is decremented by the purchase
    statement itself and can never go below zero.
    """

    __tablename__ = "shop_products"
    __table_args__ = (
        CheckConstraint("category IN ('item', 'package', 'conversion')", name="category_known"),
        CheckConstraint(
            "price_gold >= 0 AND points_price >= 0 AND gold_amount >= 0", name="amounts"
        ),
        CheckConstraint(
            "category = 'conversion' OR (price_gold > 0 AND points_price = 0)",
            name="gold_products_cost_gold",
        ),
        CheckConstraint(
            "category <> 'conversion' OR (price_gold = 0 AND points_price > 0 AND gold_amount > 0)",
            name="conversion_shape",
        ),
        CheckConstraint("stock_remaining >= 0", name="stock_non_negative"),
        CheckConstraint(
            "(stock_total IS NULL) = (stock_remaining IS NULL) AND stock_remaining <= stock_total",
            name="stock_consistent",
        ),
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        CheckConstraint("tier_required IN ('STANDARD', 'PREMIUM', 'VIP')", name="tier_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    price_gold: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    points_price: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    gold_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    items: Mapped[Any] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    limit_once: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    stock_total: Mapped[int | None] = mapped_column(Integer)
    stock_remaining: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tier_required: Mapped[str] = mapped_column(
        String(16), default="STANDARD", server_default="STANDARD"
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    highlight: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Purchase(Base):
    """One successful purchase and its receipt (failed attempts change nothing and are
    only events and metrics).

    ``idempotency_key`` is unique per player, not per (player, product): a key names one
    request, so the same key sent for another product is a 409 ``DUPLICATE``, never a
    second purchase. ``response`` is the body replayed for a repeated key; it is written
    by the purchase statement itself. Conversions carry ``settlement_status``."""

    __tablename__ = "shop_purchases"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_shop_purchases_user_key"),
        Index(
            "uq_shop_purchases_once",
            "user_id",
            "product_id",
            unique=True,
            postgresql_where=text("limit_once"),
        ),
        Index("ix_shop_purchases_user_id_id", "user_id", "id"),
        Index("ix_shop_purchases_product_id", "product_id"),  # sold counts, FK checks
        Index("ix_shop_purchases_user_id_created_at", "user_id", "created_at"),  # RFM
        Index(
            "ix_shop_purchases_pending",
            "created_at",
            postgresql_where=text("settlement_status = 'pending'"),
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "settlement_status IN ('pending', 'settled', 'voided')", name="settlement_known"
        ),
        CheckConstraint("reversed_gold >= 0 AND unrecovered_gold >= 0", name="void_amounts"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shop_products.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    price_gold: Mapped[int] = mapped_column(BigInteger)  # totals for the quantity
    points_price: Mapped[int] = mapped_column(BigInteger)
    gold_amount: Mapped[int] = mapped_column(BigInteger)
    gold_delta: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[Any] = mapped_column(JSONB)
    limit_once: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default="success", server_default="success")
    settlement_status: Mapped[str | None] = mapped_column(String(16))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_gold: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    unrecovered_gold: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    receipt: Mapped[Any] = mapped_column(JSONB)
    integrity_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    signature_version: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SettlementCallback(Base):
    """Every settlement callback applied or seen once (keyed by the provider's id), so a
    replayed callback is recognised and changes nothing."""

    __tablename__ = "shop_settlement_callbacks"

    callback_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    purchase_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shop_purchases.id"))
    status: Mapped[str] = mapped_column(String(16))
    applied: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[Any] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SigningKey(Base):
    """Versioned HMAC keys per purpose (``receipt``, ``settlement``). ``current`` signs;
    ``current`` and ``previous`` verify; ``retired`` never verifies again."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint("state IN ('current', 'previous', 'retired')", name="state_known"),
        Index(
            "uq_signing_keys_current",
            "purpose",
            unique=True,
            postgresql_where=text("state = 'current'"),
        ),
    )

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
