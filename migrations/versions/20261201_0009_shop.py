"""shop: products, purchases with receipts, settlement callbacks, signing keys

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

See ccweb/shop/models.py for what each table and constraint guarantees.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_products",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("price_gold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("points_price", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("gold_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "items",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("limit_once", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("stock_total", sa.Integer(), nullable=True),
        sa.Column("stock_remaining", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tier_required", sa.String(length=16), server_default="STANDARD", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("highlight", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category <> 'conversion' OR (price_gold = 0 AND points_price > 0 AND gold_amount > 0)",
            name=op.f("ck_shop_products_conversion_shape"),
        ),
        sa.CheckConstraint(
            "category = 'conversion' OR (price_gold > 0 AND points_price = 0)",
            name=op.f("ck_shop_products_gold_products_cost_gold"),
        ),
        sa.CheckConstraint(
            "category IN ('item', 'package', 'conversion')",
            name=op.f("ck_shop_products_category_known"),
        ),
        sa.CheckConstraint(
            "tier_required IN ('STANDARD', 'PREMIUM', 'VIP')",
            name=op.f("ck_shop_products_tier_known"),
        ),
        sa.CheckConstraint(
            "(stock_total IS NULL) = (stock_remaining IS NULL) AND stock_remaining <= stock_total",
            name=op.f("ck_shop_products_stock_consistent"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_shop_products_window_ordered")),
        sa.CheckConstraint(
            "price_gold >= 0 AND points_price >= 0 AND gold_amount >= 0",
            name=op.f("ck_shop_products_amounts"),
        ),
        sa.CheckConstraint(
            "stock_remaining >= 0", name=op.f("ck_shop_products_stock_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_shop_products_sku")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('current', 'previous', 'retired')", name=op.f("ck_signing_keys_state_known")
        ),
        sa.PrimaryKeyConstraint("purpose", "version", name=op.f("pk_signing_keys")),
    )
    op.create_index(
        "uq_signing_keys_current",
        "signing_keys",
        ["purpose"],
        unique=True,
        postgresql_where=sa.text("state = 'current'"),
    )
    op.create_table(
        "shop_purchases",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_gold", sa.BigInteger(), nullable=False),
        sa.Column("points_price", sa.BigInteger(), nullable=False),
        sa.Column("gold_amount", sa.BigInteger(), nullable=False),
        sa.Column("gold_delta", sa.BigInteger(), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("limit_once", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="success", nullable=False),
        sa.Column("settlement_status", sa.String(length=16), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_gold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unrecovered_gold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("receipt", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("integrity_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("signature_version", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "settlement_status IN ('pending', 'settled', 'voided')",
            name=op.f("ck_shop_purchases_settlement_known"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_shop_purchases_quantity_positive")),
        sa.CheckConstraint(
            "reversed_gold >= 0 AND unrecovered_gold >= 0",
            name=op.f("ck_shop_purchases_void_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["shop_products.id"],
            name=op.f("fk_shop_purchases_product_id_shop_products"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_shop_purchases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_purchases")),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_shop_purchases_user_key"),
    )
    op.create_index(
        "ix_shop_purchases_pending",
        "shop_purchases",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("settlement_status = 'pending'"),
    )
    op.create_index("ix_shop_purchases_product_id", "shop_purchases", ["product_id"], unique=False)
    op.create_index(
        "ix_shop_purchases_user_id_id", "shop_purchases", ["user_id", "id"], unique=False
    )
    op.create_index(
        "uq_shop_purchases_once",
        "shop_purchases",
        ["user_id", "product_id"],
        unique=True,
        postgresql_where=sa.text("limit_once"),
    )
    op.create_table(
        "shop_settlement_callbacks",
        sa.Column("callback_id", sa.String(length=128), nullable=False),
        sa.Column("purchase_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["shop_purchases.id"],
            name=op.f("fk_shop_settlement_callbacks_purchase_id_shop_purchases"),
        ),
        sa.PrimaryKeyConstraint("callback_id", name=op.f("pk_shop_settlement_callbacks")),
    )


def downgrade() -> None:
    op.drop_table("shop_settlement_callbacks")
    op.drop_index(
        "uq_shop_purchases_once",
        table_name="shop_purchases",
        postgresql_where=sa.text("limit_once"),
    )
    op.drop_index("ix_shop_purchases_user_id_id", table_name="shop_purchases")
    op.drop_index("ix_shop_purchases_product_id", table_name="shop_purchases")
    op.drop_index(
        "ix_shop_purchases_pending",
        table_name="shop_purchases",
        postgresql_where=sa.text("settlement_status = 'pending'"),
    )
    op.drop_table("shop_purchases")
    op.drop_index(
        "uq_signing_keys_current",
        table_name="signing_keys",
        postgresql_where=sa.text("state = 'current'"),
    )
    op.drop_table("signing_keys")
    op.drop_table("shop_products")
