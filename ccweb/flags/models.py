"""Feature flags, stored in PostgreSQL and served from a per-process copy
(:mod:`ccweb.flags.cache`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

VALUE_TYPES = ("bool", "number", "string", "json")


class FeatureFlag(Base):
    """One flag. ``value`` is what a targeted player (or the server, for a global flag)
    gets; ``off_value`` what everyone else gets (NULL = the type's off: ``false`` for a
    bool, absent otherwise). Targeting: ``target_tiers`` and ``target_segments`` (NULL or
    empty = everyone) and ``rollout_percent`` (stable per player)."""

    __tablename__ = "feature_flags"
    __table_args__ = (
        CheckConstraint(
            "value_type IN ('bool', 'number', 'string', 'json')",
            name="value_type_known",
        ),
    )

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    value_type: Mapped[str] = mapped_column(String(8), server_default="json")
    off_value: Mapped[Any | None] = mapped_column(JSONB)
    client_visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    description: Mapped[str | None] = mapped_column(String(255))
    rollout_percent: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    target_tiers: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    target_segments: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
