"""outbox: relay cursor over (txid, id) instead of per-row published_at

The relay used to mark every row (a non-HOT update, as published_at was in the partial
index) — about half of PostgreSQL's work per game round. Rows now carry their writing
transaction's id; the relay publishes rows of finished transactions behind a cursor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TXID = sa.text("((pg_current_xact_id())::text)::bigint")


def upgrade() -> None:
    op.add_column("outbox", sa.Column("txid", sa.BigInteger(), server_default=TXID, nullable=False))
    op.create_index("ix_outbox_txid_id", "outbox", ["txid", "id"], unique=False)
    op.create_table(
        "outbox_relay_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outbox_relay_cursor")),
    )
    # Existing rows: published ones go behind the cursor (txid 0), unpublished ones
    # after it (txid 1); rows written from now on carry real (larger) transaction ids.
    op.execute("UPDATE outbox SET txid = CASE WHEN published_at IS NULL THEN 1 ELSE 0 END")
    op.execute(
        "INSERT INTO outbox_relay_cursor (name, txid, last_id) SELECT 'default', 0,"
        " coalesce((SELECT max(id) FROM outbox WHERE published_at IS NOT NULL), 0)"
    )
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_column("outbox", "published_at")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE outbox o SET published_at = now() FROM outbox_relay_cursor c"
        " WHERE c.name = 'default' AND (o.txid, o.id) <= (c.txid, c.last_id)"
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox_relay_cursor")
    op.drop_index("ix_outbox_txid_id", table_name="outbox")
    op.drop_column("outbox", "txid")
