"""audit target_id as bigint; text-keyed targets in target_key

SPEC §2: ids are integers. ``admin_audit.target_id`` was text because one kind of target
(feature flags) is keyed by a string. Now ``target_id`` is BIGINT and such keys live in
``target_key`` (at most one of the two is set).

Existing rows: a ``target_id`` written as a canonical integer (what ``str(int)`` gives:
no sign but ``-``, no leading zeros, within bigint) becomes that integer; anything else
(a flag key, or text that only looks numeric such as ``007``) moves to ``target_key``
unchanged, so the downgrade restores every value exactly. The type change rewrites the
table under an exclusive lock: the audit log is small and written by admins only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# canonical integer text within bigint (the regex first: casting other text would fail)
_IS_ID = """CASE WHEN target_id ~ '^(0|-?[1-9][0-9]{0,18})$'
    THEN target_id::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
    ELSE false END"""


def upgrade() -> None:
    op.add_column("admin_audit", sa.Column("target_key", sa.String(length=64), nullable=True))
    op.execute(
        f"UPDATE admin_audit SET target_key = target_id"
        f" WHERE target_id IS NOT NULL AND NOT ({_IS_ID})"
    )
    op.alter_column(
        "admin_audit",
        "target_id",
        existing_type=sa.String(length=64),
        type_=sa.BigInteger(),
        existing_nullable=True,
        postgresql_using=f"CASE WHEN {_IS_ID} THEN target_id::bigint END",
    )
    op.create_check_constraint(
        op.f("ck_admin_audit_one_target"),
        "admin_audit",
        "num_nonnulls(target_id, target_key) <= 1",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_admin_audit_one_target"), "admin_audit", type_="check")
    op.alter_column(
        "admin_audit",
        "target_id",
        existing_type=sa.BigInteger(),
        type_=sa.String(length=64),
        existing_nullable=True,
        postgresql_using="coalesce(target_id::text, target_key)",
    )
    op.drop_column("admin_audit", "target_key")
