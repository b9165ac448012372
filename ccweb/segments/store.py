"""Reading segments: what other features ask (recommendations, flag targeting, admin).

Each call is one indexed read on the connection or session the caller already holds.
A player without a row has no segment (``None``): they never bought anything that
counts (:mod:`ccweb.segments.rfm`), and callers fall back accordingly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb.segments.rules import LABELS

Conn = Connection | Session

_LABEL = text("SELECT label FROM user_segments WHERE user_id = :u")
_ROW = text(
    "SELECT user_id, label, r_days, f_count30, m_sum30, r_score, f_score, m_score, rfm_total,"
    " last_purchase_at, source, updated_at FROM user_segments WHERE user_id = :u"
)
_COUNTS = text("SELECT label, count(*) AS n FROM user_segments GROUP BY label")
_THRESHOLDS = text(
    "SELECT m_p60, m_p95, f_cuts, m_cuts, population, computed_at"
    " FROM segment_thresholds WHERE id = 1"
)
# rows the batch did not rewrite within a day (PostgreSQL's clock on both ends)
_STALE = text(
    "SELECT count(*) FROM user_segments WHERE updated_at < now() - make_interval(secs => :s)"
)
STALE_AFTER_S = 24 * 3600


def label_of(conn: Conn, user_id: int) -> str | None:
    """The player's label (``Whale``, ``HighEngaged``, ``Medium``, ``Low``, ``AtRisk``), or
    None when they have no segment."""
    value = conn.execute(_LABEL, {"u": user_id}).scalar()
    return None if value is None else str(value)


def segment_of(conn: Conn, user_id: int) -> dict[str, Any] | None:
    """The player's whole row (``rfm_total`` a Decimal, times timezone-aware), or None."""
    row = conn.execute(_ROW, {"u": user_id}).mappings().first()
    return None if row is None else dict(row)


def label_counts(conn: Conn) -> dict[str, int]:
    """Players per label, every label present (0 when nobody has it)."""
    got = {str(r["label"]): int(r["n"]) for r in conn.execute(_COUNTS).mappings()}
    return {label: got.get(label, 0) for label in LABELS}


def thresholds(conn: Conn) -> dict[str, Any] | None:
    """The stored cut-offs of the last batch (``computed_at`` = its time), or None before
    the first batch."""
    row = conn.execute(_THRESHOLDS).mappings().first()
    return None if row is None else dict(row)


def stale_users(conn: Conn, older_than_s: float = STALE_AFTER_S) -> int:
    """Rows not rewritten for ``older_than_s`` (default a day: the nightly batch missed)."""
    return int(conn.execute(_STALE, {"s": older_than_s}).scalar_one())
