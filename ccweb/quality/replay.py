"""Replay: rebuild what the stores hold from their histories and report every difference
(disaster recovery, and a cross-check of the two pipelines that derive state).

* **Balances from the ledger** — per player Σ ``delta_gold``, the last ``balance_after``
  and the ``balance_after`` chain (each row = previous + delta), against
  ``users.gold_balance``. One full pass over the ledger: an operator command, not a
  minute job (:mod:`.checks` holds the bounded version). ``ccweb.ops.reconcile`` counts the
  same conditions; this names the players and both sides.
* **Event and mission progress from ClickHouse's ``events_raw``** — for every
  participation and mission row of an active definition, the raw ``game.round`` /
  ``streak.claim`` / ``shop.purchase`` events of the player in the row's window are turned
  into facts and applied with the worker's own rules (``ccweb.liveops.rules``:
  ``fact_from_envelope``, ``advance``, ``complete``), then compared with the stored
  ``progress`` and ``status``. Events are deduplicated by ``event_id`` (``events_raw`` is
  a ReplacingMergeTree: copies collapse only at merge time). The window follows
  ``ccweb.liveops.progress``: events from ``max(joined_at, starts_at)`` to ``ends_at``;
  missions: events whose UTC day is in the row's period. ClickHouse keeps milliseconds,
  so the bounds are compared at millisecond precision. Rows of deactivated definitions
  are skipped (the worker stops advancing them at a moment the events cannot tell), and
  so are rows the worker advanced within ``grace_s`` (their events may not have reached
  ClickHouse yet). Without ClickHouse (``CLICKHOUSE_URL`` empty) this part reports
  ``skipped: ClickHouse disabled``, which is not a failure of the balance part.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ccweb.analytics import clickhouse
from ccweb.events import iso
from ccweb.liveops.rules import (
    PROGRESS_EVENT_TYPES,
    Fact,
    advance,
    complete,
    fact_from_envelope,
    period_end,
    period_start,
)
from ccweb.quality.anomalies import finding

SKIPPED_NO_CLICKHOUSE = "skipped: ClickHouse disabled"
USERS_PER_QUERY = 500

_BALANCES = text(
    """
    WITH c AS (
        SELECT user_id, id, delta_gold, balance_after,
               balance_after <> coalesce(lag(balance_after) OVER w, 0) + delta_gold AS broken,
               row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS from_end
        FROM wallet_ledger WINDOW w AS (PARTITION BY user_id ORDER BY id)
    ), l AS (
        SELECT user_id, sum(delta_gold) AS total, count(*) AS rows,
               max(balance_after) FILTER (WHERE from_end = 1) AS last_after,
               count(*) FILTER (WHERE broken) AS breaks,
               min(id) FILTER (WHERE broken) AS first_break
        FROM c GROUP BY user_id
    )
    SELECT u.id AS user_id, u.gold_balance AS balance, coalesce(l.total, 0) AS ledger_sum,
           l.last_after, coalesce(l.breaks, 0) AS breaks, l.first_break,
           coalesce(l.rows, 0) AS rows
    FROM users u LEFT JOIN l ON l.user_id = u.id
    WHERE u.gold_balance <> coalesce(l.total, 0)
       OR u.gold_balance <> coalesce(l.last_after, 0)
       OR coalesce(l.breaks, 0) > 0
    ORDER BY u.id
    """
)

_EVENT_ROWS = text(
    """
    SELECT p.id, p.user_id, p.event_id, p.status, p.progress, p.joined_at,
           e.starts_at, e.ends_at, e.requirements
    FROM event_participations p JOIN live_events e ON e.id = p.event_id
    WHERE e.is_active
      AND (p.last_progress_at IS NULL OR p.last_progress_at < :settled)
    ORDER BY p.user_id, p.id
    """
)

_MISSION_ROWS = text(
    """
    SELECT um.id, um.user_id, um.mission_id, um.period_start, um.status, um.progress,
           m.period, m.requirements
    FROM user_missions um JOIN missions m ON m.id = um.mission_id
    WHERE m.is_active
      AND (um.last_progress_at IS NULL OR um.last_progress_at < :settled)
    ORDER BY um.user_id, um.id
    """
)


def balances(conn: Connection) -> list[dict[str, Any]]:
    """Every player whose balance the ledger does not rebuild, with both sides."""
    return [
        finding(
            "balance",
            r.user_id,
            balance=int(r.balance),
            ledger_sum=int(r.ledger_sum),
            last_balance_after=None if r.last_after is None else int(r.last_after),
            chain_breaks=int(r.breaks),
            first_break_id=r.first_break,
            ledger_rows=int(r.rows),
        )
        for r in conn.execute(_BALANCES)
    ]


# --- ClickHouse -------------------------------------------------------------------------


def clickhouse_rows(url: str, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The one place that talks to ClickHouse: a client of ``ccweb.analytics.clickhouse``
    (its bounded timeouts) for this command's few queries, closed afterwards."""
    client = clickhouse.new_client(url)
    try:
        return list(client.execute(query, params))
    finally:
        client.disconnect()


_RAW_EVENTS = """
    SELECT event_id, event_type, user_id, toUInt32(ts) AS s, ts_ms, payload
    FROM events_raw
    WHERE event_date >= toDate(toDateTime(%(since)s))
      AND event_date <= toDate(toDateTime(%(until)s))
      AND ts >= toDateTime(%(since)s) AND ts <= toDateTime(%(until)s)
      AND event_type IN %(types)s AND user_id IN %(uids)s
"""


def raw_facts(
    url: str, user_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, list[Fact]]:
    """The progress facts of ``user_ids`` between ``since`` and ``until`` (whole seconds,
    inclusive: the callers filter to the millisecond), one per event id."""
    rows = clickhouse_rows(
        url,
        _RAW_EVENTS,
        {
            "since": int(since.timestamp()),
            "until": int(until.timestamp()) + 1,
            "types": tuple(sorted(PROGRESS_EVENT_TYPES)),
            "uids": tuple(user_ids),
        },
    )
    seen: set[str] = set()
    facts: dict[int, list[Fact]] = defaultdict(list)
    for event_id, event_type, user_id, secs, ms, payload in rows:
        if event_id in seen:
            continue
        seen.add(event_id)
        ts = datetime.fromtimestamp(secs, UTC) + timedelta(milliseconds=ms)
        fact = fact_from_envelope(
            {
                "event_id": event_id,
                "event_type": event_type,
                "user_id": int(user_id),
                "ts": iso(ts),
                "payload": json.loads(payload) if payload else {},
            }
        )
        if fact is not None:
            facts[fact.user_id].append(fact)
    for items in facts.values():
        items.sort(key=lambda f: f.ts)
    return facts


def _ms(dt: datetime) -> datetime:
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _day_start(d: Any) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _compare(
    kind: str, row: Any, facts: Iterable[Fact], ident: dict[str, Any]
) -> dict[str, Any] | None:
    reqs = row.requirements
    replayed = advance(reqs, [0] * len(reqs), facts)
    stored = [int(x) for x in row.progress]
    done = complete(reqs, replayed)
    status_ok = (row.status == "active") != done
    if replayed == stored and status_ok:
        return None
    return finding(
        "progress",
        row.user_id,
        kind=kind,
        row_id=row.id,
        **ident,
        stored=stored,
        replayed=replayed,
        stored_status=row.status,
        replayed_complete=done,
    )


def progress(
    conn: Connection, url: str, *, grace_s: float = 60.0, now: datetime | None = None
) -> dict[str, Any]:
    """Rebuild every participation's and mission row's progress from ``events_raw``."""
    now = now or datetime.now(UTC)
    settled = now - timedelta(seconds=grace_s)
    event_rows = list(conn.execute(_EVENT_ROWS, {"settled": settled}))
    mission_rows = list(conn.execute(_MISSION_ROWS, {"settled": settled}))
    by_user: dict[int, list[tuple[str, Any]]] = defaultdict(list)
    for r in event_rows:
        by_user[r.user_id].append(("event", r))
    for r in mission_rows:
        by_user[r.user_id].append(("mission", r))
    diffs: list[dict[str, Any]] = []
    events_read = 0
    uids = sorted(by_user)
    for i in range(0, len(uids), USERS_PER_QUERY):
        chunk = uids[i : i + USERS_PER_QUERY]
        spans = [_span(kind, r) for u in chunk for kind, r in by_user[u]]
        facts = raw_facts(url, chunk, min(s for s, _ in spans), max(e for _, e in spans))
        events_read += sum(len(v) for v in facts.values())
        for uid in chunk:
            mine = facts.get(uid, [])
            for kind, r in by_user[uid]:
                diff = _check_row(kind, r, mine)
                if diff is not None:
                    diffs.append(diff)
    return {
        "count": len(diffs),
        "differences": diffs,
        "rows_checked": len(event_rows) + len(mission_rows),
        "events_read": events_read,
    }


def _span(kind: str, r: Any) -> tuple[datetime, datetime]:
    if kind == "event":
        return _ms(max(r.joined_at, r.starts_at)), r.ends_at
    start = _day_start(r.period_start)
    return start, _day_start(period_end(r.period, r.period_start))


def _check_row(kind: str, r: Any, facts: list[Fact]) -> dict[str, Any] | None:
    if kind == "event":
        lo, hi = _ms(max(r.joined_at, r.starts_at)), _ms(r.ends_at)
        counted = [f for f in facts if lo <= f.ts < hi]
        return _compare("event", r, counted, {"event_id": r.event_id})
    counted = [f for f in facts if period_start(r.period, f.ts.date()) == r.period_start]
    return _compare(
        "mission",
        r,
        counted,
        {"mission_id": r.mission_id, "period_start": r.period_start.isoformat()},
    )


def replay(conn: Connection, clickhouse_url: str, *, grace_s: float = 60.0) -> dict[str, Any]:
    """Both parts; ``ok`` when neither found a difference (a skipped part is not one)."""
    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    conn.execute(text("SELECT set_config('statement_timeout', '0', true)"))
    generated = conn.execute(text("SELECT now()")).scalar_one()
    diffs = balances(conn)
    report: dict[str, Any] = {
        "generated_at": iso(generated),
        "balances": {"count": len(diffs), "differences": diffs},
    }
    if clickhouse_url:
        report["progress"] = progress(conn, clickhouse_url, grace_s=grace_s, now=generated)
    else:
        report["progress"] = {"skipped": SKIPPED_NO_CLICKHOUSE}
    conn.rollback()
    report["ok"] = not diffs and not report["progress"].get("count")
    return report
