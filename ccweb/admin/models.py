"""Audit log: every admin write lands here, in the same transaction as the write.

The target is named by ``target_type`` and either ``target_id`` (the row's integer id:
users, events, missions, achievements, invite codes) or ``target_key`` (things keyed by
text: feature flags) — never both. Ids are integers everywhere in the API (SPEC §2), so
they are not squeezed into a text column beside keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base


class AuditLog(Base):
    __tablename__ = "admin_audit"
    __table_args__ = (
        CheckConstraint("num_nonnulls(target_id, target_key) <= 1", name="one_target"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    admin_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    target_key: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
