"""outbox.event_id: drop the UNIQUE index

A random-UUID btree insert on every event cost a measurable share of each game round;
uuid4 ids, the Redis dedupe key and consumer-side dedupe already make duplicates harmless.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("uq_outbox_event_id", "outbox", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_outbox_event_id", "outbox", ["event_id"])
