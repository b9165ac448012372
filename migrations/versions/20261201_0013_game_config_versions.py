"""games config versions: game_configs, game_rounds.config_version

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

A round is verified with the games' parameters it was played with, not the current ones:
after a deploy that changes a paytable an older round must still verify. Each round
records the version of ``GET /api/games/config`` it was played with, and the document of
every version played is kept (immutable, keyed by its hash). Rounds from before this
revision keep NULL (the verifier uses the current config and says so): no backfill, and
no index (nothing looks rounds up by version).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "game_configs",
        sa.Column("version", sa.Text(), primary_key=True),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    # nullable, no default: a metadata-only change, however many rounds there are
    op.add_column("game_rounds", sa.Column("config_version", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("game_rounds", "config_version")
    op.drop_table("game_configs")
