"""typed, segment-targeted feature flags; RFM segments per player

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Flags gain a declared ``value_type`` (bool | number | string | json; existing rows get
the type of their value), ``target_segments`` (RFM labels, like ``target_tiers``),
``off_value`` (what a player outside the targeting/rollout gets; NULL = the type's
off: false for bool, absent otherwise) and a ``version`` bumped by every write.

``user_segments`` holds one RFM snapshot per player who ever bought something
(``ccweb/segments``); ``segment_thresholds`` (one row) the population cut-offs of the last
batch, so the incremental recompute of one player scores against the same scale.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LABELS = "('Whale', 'HighEngaged', 'Medium', 'Low', 'AtRisk')"


def upgrade() -> None:
    op.add_column(
        "feature_flags",
        sa.Column("value_type", sa.String(8), nullable=False, server_default="json"),
    )
    op.execute(
        "UPDATE feature_flags SET value_type = CASE jsonb_typeof(value)"
        " WHEN 'boolean' THEN 'bool' WHEN 'number' THEN 'number'"
        " WHEN 'string' THEN 'string' ELSE 'json' END"
    )
    op.create_check_constraint(
        "value_type_known",
        "feature_flags",
        "value_type IN ('bool', 'number', 'string', 'json')",
    )
    op.add_column("feature_flags", sa.Column("target_segments", postgresql.ARRAY(sa.String(16))))
    op.add_column("feature_flags", sa.Column("off_value", postgresql.JSONB()))
    op.add_column(
        "feature_flags", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )

    op.create_table(
        "user_segments",
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("r_days", sa.Integer(), nullable=False),
        sa.Column("f_count30", sa.Integer(), nullable=False),
        sa.Column("m_sum30", sa.BigInteger(), nullable=False),
        sa.Column("r_score", sa.SmallInteger(), nullable=False),
        sa.Column("f_score", sa.SmallInteger(), nullable=False),
        sa.Column("m_score", sa.SmallInteger(), nullable=False),
        sa.Column("rfm_total", sa.Numeric(4, 2), nullable=False),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True)),
        sa.Column("source", sa.String(12), nullable=False, server_default="batch"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(f"label IN {LABELS}", name="label_known"),
        sa.CheckConstraint("source IN ('batch', 'incremental')", name="source_known"),
    )
    op.create_index("ix_user_segments_label", "user_segments", ["label"])
    op.create_index("ix_user_segments_updated_at", "user_segments", ["updated_at"])

    op.create_table(
        "segment_thresholds",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("m_p60", sa.BigInteger(), nullable=False),
        sa.Column("m_p95", sa.BigInteger(), nullable=False),
        sa.Column("f_cuts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("m_cuts", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="single_row"),
    )
    # the batch reads each player's purchases in time order per player
    op.create_index(
        "ix_shop_purchases_user_id_created_at", "shop_purchases", ["user_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_shop_purchases_user_id_created_at", table_name="shop_purchases")
    op.drop_table("segment_thresholds")
    op.drop_index("ix_user_segments_updated_at", table_name="user_segments")
    op.drop_index("ix_user_segments_label", table_name="user_segments")
    op.drop_table("user_segments")
    op.drop_column("feature_flags", "version")
    op.drop_column("feature_flags", "off_value")
    op.drop_column("feature_flags", "target_segments")
    op.drop_column("feature_flags", "value_type")
