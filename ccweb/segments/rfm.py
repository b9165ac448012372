"""RFM snapshots in SQL: the whole population (:func:`run_batch`) or a few players
(:func:`recompute`), both scored by the rules of :mod:`ccweb.segments.rules`.

Who has a row: a player with at least one successful purchase that was not voided
(``shop_purchases`` holds only successful purchases — failed attempts are events — and
a conversion voided by its provider does not count). A player who never bought has no
segment (recommendations fall back); a player whose purchases were all voided loses
their row. Purchases after ``now`` are ignored, so a snapshot is "as of now".

Both paths are ONE statement of data-modifying CTEs: aggregate the purchases per player,
take the thresholds, upsert the scored rows, delete the rows of players who no longer
qualify, and report which labels changed (the statement reads the old labels from its
own snapshot). The batch also computes the thresholds (``percentile_disc`` over every
qualifying player) and stores them, so the incremental path scores one player on the
batch's scale. Before the first batch there are no stored thresholds: the incremental
statement then computes them from all purchases itself (the same expression, gated so
it costs nothing once a batch ran) and does not store them — only a batch does, so
``segment_thresholds.computed_at`` is the time of the last batch. The worker runs a
batch at once when none ever ran (:mod:`ccweb.segments.jobs`), so that window is short.

Writers are serialised by one transaction-scoped advisory lock: each computes from its
statement's snapshot, so a batch (or a recompute) that started before a purchase
committed could otherwise overwrite the newer row written for it. A recompute holds it
for milliseconds, the batch for its statement (seconds at 100 000 players, see
bench/RESULTS.md): a recompute waiting that long is still well inside the 2-minute
target. ``updated_at`` records when a row was written (PostgreSQL's clock, like every
recording timestamp); the decision instant is the caller's ``now`` (``ccweb.clock``).

After commit: a recompute touches the players whose label changed (their cached
dashboard renders again); a batch that changed any label touches the shared content
version once (every dashboard renders again) instead of bumping thousands of keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.segments import rules

# pg_advisory_xact_lock key of every user_segments writer ("cc_segs" in ASCII)
LOCK_KEY = 0x63635F73656773

_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_TIMEOUT = text("SELECT set_config('statement_timeout', :ms, true)")
# The batch aggregates every buyer at once: enough memory to do it without spilling to
# disk (100 000 players spill at the default 4 MB; see bench/RESULTS.md).
_WORK_MEM = text("SELECT set_config('work_mem', '64MB', true)")

# A purchase that counts: successful (the only rows there are), not voided, not after now.
_QUALIFIES = (
    "status = 'success' AND settlement_status IS DISTINCT FROM 'voided' AND created_at <= :now"
)


def _agg(where: str) -> str:
    return f"""
        SELECT user_id,
               max(created_at) AS last_at,
               CAST(count(*) FILTER (WHERE created_at >= :win_start) AS int) AS f,
               CAST(coalesce(sum(price_gold + points_price)
                             FILTER (WHERE created_at >= :win_start), 0) AS bigint) AS m
        FROM shop_purchases
        WHERE {_QUALIFIES}{where}
        GROUP BY user_id"""


_Q = ", ".join(str(q) for q in rules.QUANTILES)
_ZEROS = "{" + ",".join("0" for _ in rules.QUANTILES) + "}"  # no population yet

# The population's cut-offs over an aggregate CTE named ``src``.
_THRESHOLDS = f"""
        SELECT CAST(coalesce(percentile_disc({rules.M_P60}) WITHIN GROUP (ORDER BY m)
                             FILTER (WHERE m > 0), 0) AS bigint) AS m_p60,
               CAST(coalesce(percentile_disc({rules.M_P95}) WITHIN GROUP (ORDER BY m)
                             FILTER (WHERE m > 0), 0) AS bigint) AS m_p95,
               CAST(coalesce(percentile_disc(ARRAY[{_Q}]) WITHIN GROUP (ORDER BY f),
                             '{_ZEROS}') AS int[]) AS f_cuts,
               CAST(coalesce(percentile_disc(ARRAY[{_Q}]) WITHIN GROUP (ORDER BY m),
                             '{_ZEROS}') AS bigint[]) AS m_cuts,
               CAST(count(*) AS int) AS population
        FROM src"""

_STORED = "SELECT m_p60, m_p95, f_cuts, m_cuts, population FROM segment_thresholds WHERE id = 1"


def _scored_upsert(source: str) -> str:
    """CTEs ``scored`` and ``up`` over ``agg`` and ``th`` (one row)."""
    r = "(:today - CAST(a.last_at AT TIME ZONE 'UTC' AS date))"
    return f"""
    scored AS (
        SELECT a.user_id, a.last_at, a.f, a.m, {r} AS r, th.m_p60, th.m_p95,
               {rules.r_score_sql(r)} AS rs,
               {rules.quintile_sql("a.f", "th.f_cuts")} AS fs,
               {rules.quintile_sql("a.m", "th.m_cuts")} AS ms
        FROM agg a CROSS JOIN th
    ),
    up AS (
        INSERT INTO user_segments AS s (user_id, label, r_days, f_count30, m_sum30, r_score,
                                        f_score, m_score, rfm_total, last_purchase_at,
                                        source, updated_at)
        SELECT user_id, {rules.label_sql("r", "f", "m", "m_p60", "m_p95")}, r, f, m, rs, fs, ms,
               {rules.total_sql("rs", "fs", "ms")}, last_at, '{source}', now()
        FROM scored
        ON CONFLICT (user_id) DO UPDATE SET
            label = EXCLUDED.label, r_days = EXCLUDED.r_days, f_count30 = EXCLUDED.f_count30,
            m_sum30 = EXCLUDED.m_sum30, r_score = EXCLUDED.r_score, f_score = EXCLUDED.f_score,
            m_score = EXCLUDED.m_score, rfm_total = EXCLUDED.rfm_total,
            last_purchase_at = EXCLUDED.last_purchase_at, source = EXCLUDED.source,
            updated_at = EXCLUDED.updated_at
        RETURNING user_id, label
    )"""


_BATCH = text(
    f"""
    WITH agg AS ({_agg("")}),
    src AS (SELECT f, m FROM agg),
    th AS ({_THRESHOLDS}),
    old AS (SELECT user_id, label FROM user_segments),
    {_scored_upsert("batch")},
    gone AS (
        DELETE FROM user_segments s
        WHERE NOT EXISTS (SELECT 1 FROM agg WHERE agg.user_id = s.user_id)
        RETURNING s.user_id
    ),
    stored AS (
        INSERT INTO segment_thresholds (id, m_p60, m_p95, f_cuts, m_cuts, population, computed_at)
        SELECT 1, m_p60, m_p95, f_cuts, m_cuts, population, :now FROM th
        ON CONFLICT (id) DO UPDATE SET
            m_p60 = EXCLUDED.m_p60, m_p95 = EXCLUDED.m_p95, f_cuts = EXCLUDED.f_cuts,
            m_cuts = EXCLUDED.m_cuts, population = EXCLUDED.population,
            computed_at = EXCLUDED.computed_at
        RETURNING m_p60, m_p95, f_cuts, m_cuts, population
    )
    SELECT (SELECT count(*) FROM up) AS players,
           (SELECT count(*) FROM gone) AS removed,
           (SELECT count(*) FROM up LEFT JOIN old USING (user_id)
            WHERE old.label IS DISTINCT FROM up.label) AS relabelled,
           (SELECT coalesce(jsonb_object_agg(label, n), '{{}}')
            FROM (SELECT label, count(*) AS n FROM up GROUP BY label) c) AS labels,
           (SELECT to_jsonb(stored) FROM stored) AS thresholds
    """
)

_RECOMPUTE = text(
    f"""
    WITH ids AS (SELECT DISTINCT unnest(CAST(:ids AS bigint[])) AS user_id),
    agg AS ({_agg(" AND user_id = ANY(CAST(:ids AS bigint[]))")}),
    stored AS ({_STORED}),
    src AS ({_agg("")}),
    th AS (
        SELECT m_p60, m_p95, f_cuts, m_cuts FROM stored
        UNION ALL  -- no batch yet: the population's cut-offs now (not evaluated otherwise)
        SELECT m_p60, m_p95, f_cuts, m_cuts FROM ({_THRESHOLDS}) computed
        WHERE NOT EXISTS (SELECT 1 FROM stored)
    ),
    old AS (SELECT s.user_id, s.label FROM user_segments s JOIN ids USING (user_id)),
    {_scored_upsert("incremental")},
    gone AS (
        DELETE FROM user_segments s USING ids
        WHERE s.user_id = ids.user_id
          AND NOT EXISTS (SELECT 1 FROM agg WHERE agg.user_id = s.user_id)
        RETURNING s.user_id
    )
    SELECT up.user_id, old.label AS old_label, up.label AS new_label
    FROM up LEFT JOIN old USING (user_id)
    UNION ALL
    SELECT gone.user_id, old.label, NULL FROM gone JOIN old USING (user_id)
    """
)


@dataclass(frozen=True)
class BatchResult:
    players: int  # rows written (players with a qualifying purchase)
    removed: int  # rows deleted (no qualifying purchase any more)
    changed: int  # players whose label changed (new, different, or removed)
    labels: dict[str, int]
    thresholds: dict[str, Any]
    now: datetime
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The one-line summary the command and the admin API print."""
        return {
            "players": self.players,
            "removed": self.removed,
            "changed": self.changed,
            "labels": self.labels,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RecomputeResult:
    players: int  # rows written
    changed: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)  # old, new


def window(now: datetime) -> dict[str, Any]:
    """The statement parameters for ``now``: the instant, its UTC day, and the start of
    the 30-day window (midnight UTC of the oldest day in it)."""
    now = now.astimezone(UTC)
    today = now.date()
    start = datetime.combine(today - timedelta(days=rules.WINDOW_DAYS - 1), dtime(0), UTC)
    return {"now": now, "today": today, "win_start": start}


def lock(session: Session, statement_timeout_s: float | None = None) -> None:
    """Take the writers' lock for this transaction (and raise its statement timeout)."""
    if statement_timeout_s is not None:
        session.execute(_TIMEOUT, {"ms": str(int(statement_timeout_s * 1000))})
    session.execute(_LOCK, {"k": LOCK_KEY})


def prepare_batch(session: Session, statement_timeout_s: float | None = None) -> None:
    """Everything the batch statement needs first: memory, its timeout, the lock."""
    session.execute(_WORK_MEM)
    lock(session, statement_timeout_s)


def run_batch(
    session: Session, now: datetime, *, statement_timeout_s: float | None = None
) -> BatchResult:
    """Recompute every player in the caller's transaction (``source = 'batch'``), store the
    thresholds, and touch the content version after commit if any label changed."""
    started = time.perf_counter()
    prepare_batch(session, statement_timeout_s)
    row = session.execute(_BATCH, window(now)).mappings().one()
    changed = int(row["relabelled"]) + int(row["removed"])
    if changed:
        effects.of(session).touch_content()
    labels = {label: int(row["labels"].get(label, 0)) for label in rules.LABELS}
    return BatchResult(
        players=int(row["players"]),
        removed=int(row["removed"]),
        changed=changed,
        labels=labels,
        thresholds=dict(row["thresholds"]),
        now=now,
        seconds=time.perf_counter() - started,
    )


def recompute(session: Session, user_ids: list[int] | set[int], now: datetime) -> RecomputeResult:
    """Recompute these players in the caller's transaction (``source = 'incremental'``)
    on the stored thresholds; touch the players whose label changed after commit."""
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return RecomputeResult(0)
    lock(session)
    rows = session.execute(_RECOMPUTE, {**window(now), "ids": ids}).mappings().all()
    changed = {
        int(r["user_id"]): (r["old_label"], r["new_label"])
        for r in rows
        if r["old_label"] != r["new_label"]
    }
    if changed:
        effects.of(session).touch(*changed)
    return RecomputeResult(sum(1 for r in rows if r["new_label"] is not None), changed)


def thresholds_of(row: dict[str, Any]) -> rules.Thresholds:
    return rules.Thresholds(
        m_p60=int(row["m_p60"]),
        m_p95=int(row["m_p95"]),
        f_cuts=tuple(int(c) for c in row["f_cuts"]),
        m_cuts=tuple(int(c) for c in row["m_cuts"]),
    )
