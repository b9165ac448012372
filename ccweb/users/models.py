"""The player/operator account. ``gold_balance`` is written only by ccweb.wallet.ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

TIERS = ("STANDARD", "PREMIUM", "VIP")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("gold_balance >= 0", name="gold_non_negative"),
        CheckConstraint("tier IN ('STANDARD', 'PREMIUM', 'VIP')", name="tier_valid"),
        CheckConstraint("experience_points >= 0", name="xp_non_negative"),
        # normally empty: the data-quality check for negative balances reads it, not users
        Index("ix_users_negative_balance", "id", postgresql_where=text("gold_balance < 0")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(32), unique=True)
    nickname: Mapped[str] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    tier: Mapped[str] = mapped_column(String(16), default="STANDARD", server_default="STANDARD")
    level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    experience_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    gold_balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    invite_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
