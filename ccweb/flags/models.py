"""Feature flags, stored in PostgreSQL (read through a short in-process cache)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base


class FeatureFlag(Base):
    __tablename__ = "feature_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    client_visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    description: Mapped[str | None] = mapped_column(String(255))
    rollout_percent: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    target_tiers: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
