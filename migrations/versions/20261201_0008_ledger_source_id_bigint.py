"""wallet_ledger.source_id is an integer (SPEC §2: ids are integers)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The column held text: the id of what caused the entry (a round, an event, an admin…),
except for streak claims, which stored their date. Streak entries now have no source id
(the date is in ``reason`` and ``created_at``); existing non-numeric values become NULL
and keep their text in ``reason`` if it did not already say it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE wallet_ledger
        SET reason = left(coalesce(reason || ' ', '') || '(' || source_id || ')', 255),
            source_id = NULL
        WHERE source_id IS NOT NULL AND source_id !~ '^-?[0-9]{1,18}$'
        """
    )
    op.alter_column(
        "wallet_ledger",
        "source_id",
        type_=sa.BigInteger(),
        existing_type=sa.String(64),
        postgresql_using="source_id::bigint",
    )


def downgrade() -> None:
    op.alter_column(
        "wallet_ledger",
        "source_id",
        type_=sa.String(64),
        existing_type=sa.BigInteger(),
        postgresql_using="source_id::text",
    )
