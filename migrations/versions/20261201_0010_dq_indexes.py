"""indexes for the data-quality checks: BRIN on ledger/round time, negative balances

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The checks (ccweb/quality) run every minute over a recent time window; without an index
on created_at each run scans the whole ledger and round tables. Both tables are
append-only in time order, so a BRIN index (a few pages) is enough. The partial index
on users is normally empty: finding negative balances reads it, not the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_wallet_ledger_created_at_brin",
        "wallet_ledger",
        ["created_at"],
        postgresql_using="brin",
    )
    op.create_index(
        "ix_game_rounds_created_at_brin", "game_rounds", ["created_at"], postgresql_using="brin"
    )
    op.create_index(
        "ix_users_negative_balance",
        "users",
        ["id"],
        postgresql_where=sa.text("gold_balance < 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_users_negative_balance", table_name="users")
    op.drop_index("ix_game_rounds_created_at_brin", table_name="game_rounds")
    op.drop_index("ix_wallet_ledger_created_at_brin", table_name="wallet_ledger")
