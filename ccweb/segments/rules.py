"""The RFM rules (seed 003 §3), defined once: scores, total and label, in Python and SQL.

Pure: no database, no Redis, no clock. The batch and the incremental recompute
(:mod:`ccweb.segments.rfm`) score in SQL with the expressions :func:`r_score_sql`,
:func:`quintile_sql`, :func:`total_sql` and :func:`label_sql` build from the SAME
constants the Python functions read, so the two cannot drift by an edit in one place;
``tests/integration/test_segments.py`` also evaluates the SQL on a table of boundary
cases and compares it with the Python results (a wrong rewrite of one side fails).

Inputs (computed by :mod:`ccweb.segments.rfm` from ``shop_purchases``):

* ``r_days`` — whole UTC calendar days between the last purchase and now (a purchase
  today is 0, yesterday 1), like the streak's days: the nightly batch runs after
  midnight and a label does not change with the hour of the day;
* ``f_count30`` — purchases in the last 30 UTC days (today and the 29 before, i.e.
  ``r_days`` of the purchase < 30), so ``f_count30 = 0`` exactly when ``r_days >= 30``;
* ``m_sum30`` — their value: ``price_gold + points_price`` (gold paid for items and
  packages, external points paid for conversions; one point counts as one gold — the
  shop prices a conversion's points at par with gold, and no exchange rate exists).

Scores are 1..5, 5 = best, for all three:

* ``R`` by the seed's fixed cut-offs (``R_CUTS``: <=1 → 5, <=3 → 4, <=7 → 3, <=14 → 2,
  else 1);
* ``F`` and ``M`` by quintile cut-offs of the population (every player with a row):
  ``cuts`` are the 20/40/60/80 % values (``percentile_disc``) and the score is 1 + the
  number of cuts the value is strictly above. Strictly: under heavy ties (most players
  bought once) a value equal to a cut is not "better than" that quantile, so the
  crowd at the bottom scores 1 rather than 5. The seed's ``NTILE(5)`` would split tied
  values between tiles arbitrarily, and could not score one player on the batch's scale.
* ``rfm_total = 0.4 R + 0.3 F + 0.3 M`` (exact, two decimals).

Labels, first match wins (``label``):

1. ``Whale``: ``m_sum30 > 0`` and ``m_sum30 >= m_p95`` (the 95th percentile of
   ``m_sum30`` over players with ``m_sum30 > 0``);
2. ``HighEngaged``: ``f_count30 >= 10`` and ``r_days <= 7``;
3. ``AtRisk``: ``r_days > 21``, or ``f_count30 = 0`` and the last purchase more than 30
   days ago (with the definitions above the second clause implies the first; it is kept
   so the rule reads like the seed's);
4. ``Medium``: ``f_count30`` in 4..9, or ``m_sum30`` in ``[m_p60, m_p95)`` (``m_p60`` over
   the same population as ``m_p95``; ``m_sum30 > 0`` required);
5. ``Low``: everything else that has a purchase (e.g. ``f_count30`` 1..3 in the last
   three weeks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

WINDOW_DAYS = 30  # F and M look at purchases with r_days < WINDOW_DAYS
R_CUTS: tuple[tuple[int, int], ...] = ((1, 5), (3, 4), (7, 3), (14, 2))  # r_days <= d → score
R_FLOOR = 1
QUANTILES = (0.2, 0.4, 0.6, 0.8)  # F and M quintile cut-offs
M_P60, M_P95 = 0.6, 0.95
WEIGHTS = (4, 3, 3)  # tenths: 0.4 R + 0.3 F + 0.3 M

HIGH_ENGAGED_MIN_F = 10
HIGH_ENGAGED_MAX_R = 7
AT_RISK_AFTER_R = 21  # r_days > this
AT_RISK_IDLE_DAYS = 30  # f_count30 = 0 and r_days > this
MEDIUM_F = (4, 9)  # inclusive

WHALE, HIGH_ENGAGED, MEDIUM, LOW, AT_RISK = "Whale", "HighEngaged", "Medium", "Low", "AtRisk"
LABELS = (WHALE, HIGH_ENGAGED, MEDIUM, LOW, AT_RISK)  # the CHECK of user_segments.label


@dataclass(frozen=True)
class Thresholds:
    """The population's cut-offs, computed by the batch (``segment_thresholds``)."""

    m_p60: int
    m_p95: int
    f_cuts: tuple[int, ...]
    m_cuts: tuple[int, ...]


@dataclass(frozen=True)
class Scores:
    r: int
    f: int
    m: int
    total: Decimal
    label: str


def r_score(r_days: int) -> int:
    for days, score in R_CUTS:
        if r_days <= days:
            return score
    return R_FLOOR


def quintile_score(value: int, cuts: Sequence[int]) -> int:
    """1 + the number of cut-offs ``value`` is strictly above."""
    return 1 + sum(1 for c in cuts if value > c)


def rfm_total(r: int, f: int, m: int) -> Decimal:
    wr, wf, wm = WEIGHTS
    return (Decimal(wr * r + wf * f + wm * m) / 10).quantize(Decimal("0.01"))


def label(r_days: int, f_count30: int, m_sum30: int, m_p60: int, m_p95: int) -> str:
    if m_sum30 > 0 and m_sum30 >= m_p95:
        return WHALE
    if f_count30 >= HIGH_ENGAGED_MIN_F and r_days <= HIGH_ENGAGED_MAX_R:
        return HIGH_ENGAGED
    if r_days > AT_RISK_AFTER_R or (f_count30 == 0 and r_days > AT_RISK_IDLE_DAYS):
        return AT_RISK
    lo, hi = MEDIUM_F
    if lo <= f_count30 <= hi or (m_sum30 > 0 and m_p60 <= m_sum30 < m_p95):
        return MEDIUM
    return LOW


def score(r_days: int, f_count30: int, m_sum30: int, th: Thresholds) -> Scores:
    r, f, m = (
        r_score(r_days),
        quintile_score(f_count30, th.f_cuts),
        quintile_score(m_sum30, th.m_cuts),
    )
    return Scores(
        r, f, m, rfm_total(r, f, m), label(r_days, f_count30, m_sum30, th.m_p60, th.m_p95)
    )


# -- the same rules as SQL expressions (arguments are SQL expressions, not values) ------


def r_score_sql(r: str) -> str:
    whens = " ".join(f"WHEN {r} <= {days} THEN {s}" for days, s in R_CUTS)
    return f"(CASE {whens} ELSE {R_FLOOR} END)"


def quintile_sql(value: str, cuts: str) -> str:
    """``cuts`` is a SQL array of ``len(QUANTILES)`` cut-offs (1-based)."""
    above = " + ".join(f"({value} > {cuts}[{i}])::int" for i in range(1, len(QUANTILES) + 1))
    return f"(1 + {above})"


def total_sql(r: str, f: str, m: str) -> str:
    wr, wf, wm = WEIGHTS
    return f"CAST(({wr} * {r} + {wf} * {f} + {wm} * {m}) / 10.0 AS numeric(4, 2))"


def label_sql(r_days: str, f: str, m: str, m_p60: str, m_p95: str) -> str:
    lo, hi = MEDIUM_F
    return (
        "(CASE"
        f" WHEN {m} > 0 AND {m} >= {m_p95} THEN '{WHALE}'"
        f" WHEN {f} >= {HIGH_ENGAGED_MIN_F} AND {r_days} <= {HIGH_ENGAGED_MAX_R}"
        f" THEN '{HIGH_ENGAGED}'"
        f" WHEN {r_days} > {AT_RISK_AFTER_R} OR ({f} = 0 AND {r_days} > {AT_RISK_IDLE_DAYS})"
        f" THEN '{AT_RISK}'"
        f" WHEN {f} BETWEEN {lo} AND {hi} OR ({m} > 0 AND {m} >= {m_p60} AND {m} < {m_p95})"
        f" THEN '{MEDIUM}'"
        f" ELSE '{LOW}' END)"
    )
