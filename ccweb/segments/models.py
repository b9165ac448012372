"""RFM segments (seed 003 §3): one snapshot per player who ever bought something, and
the population cut-offs of the last batch."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from ccweb.db import Base

LABELS = ("Whale", "HighEngaged", "Medium", "Low", "AtRisk")


class UserSegment(Base):
    __tablename__ = "user_segments"
    __table_args__ = (
        CheckConstraint(
            "label IN ('Whale', 'HighEngaged', 'Medium', 'Low', 'AtRisk')",
            name="label_known",
        ),
        CheckConstraint("source IN ('batch', 'incremental')", name="source_known"),
        Index("ix_user_segments_label", "label"),
        Index("ix_user_segments_updated_at", "updated_at"),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(16))
    r_days: Mapped[int] = mapped_column(Integer)
    f_count30: Mapped[int] = mapped_column(Integer)
    m_sum30: Mapped[int] = mapped_column(BigInteger)
    r_score: Mapped[int] = mapped_column(SmallInteger)
    f_score: Mapped[int] = mapped_column(SmallInteger)
    m_score: Mapped[int] = mapped_column(SmallInteger)
    rfm_total: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    last_purchase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(12), server_default="batch")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SegmentThresholds(Base):
    __tablename__ = "segment_thresholds"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    m_p60: Mapped[int] = mapped_column(BigInteger)
    m_p95: Mapped[int] = mapped_column(BigInteger)
    f_cuts: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    m_cuts: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    population: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
