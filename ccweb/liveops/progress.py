"""Advancing events and missions from gameplay facts: the body of the worker's
``progress`` group, one transaction per batch.

1. Make sure every player of the batch has this period's mission rows (daily and
   weekly missions reset by starting a new row for the new period).
2. Lock the players' open participations and mission rows (``FOR UPDATE``, in id
   order, so two consumers never lose each other's update and cannot deadlock on one
   table) and add the facts that count:
   * events: facts at or after both the join time and ``starts_at``, before ``ends_at``;
   * missions: facts whose UTC day falls in the row's period;
   * a requirement with ``game_type`` counts only that game's rounds.
3. Write the changed rows in one statement (``progress_version`` + 1,
   ``last_progress_at``; ``claimable`` once every target is met), unlock achievements,
   queue ``event.progress`` / ``mission.progress`` (one per player and batch, listing
   what changed) and ``achievement.unlocked`` in the outbox, and bump the players'
   dashboard caches after commit.

The caller records the batch's event ids in ``processed_events`` in the same
transaction, so a redelivered event never counts twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ccweb import effects, events, pg
from ccweb.liveops import achievements
from ccweb.liveops.rules import Fact, advance, complete, period_start, progress_out

# Prepared statements (ccweb.pg): they run for every batch, and planning these joins
# cost PostgreSQL about as much as executing them.
_ENSURE_MISSIONS = """
    INSERT INTO user_missions (user_id, mission_id, period_start, progress)
    SELECT r.uid, m.id, r.start,
           array_fill(0::bigint, ARRAY[jsonb_array_length(m.requirements)])
    FROM jsonb_to_recordset(:rows) AS r(uid bigint, period text, start date)
    JOIN missions m ON m.period = r.period AND m.is_active
    ORDER BY r.uid, m.id
    ON CONFLICT DO NOTHING
"""

_LOCK_PARTICIPATIONS = """
    SELECT p.id, p.user_id, p.event_id, p.progress, p.joined_at,
           e.starts_at, e.ends_at, e.requirements
    FROM event_participations p JOIN live_events e ON e.id = p.event_id
    WHERE p.user_id = ANY(:uids) AND p.status = 'active' AND e.is_active
      AND e.ends_at > :since
    ORDER BY p.id
    FOR UPDATE OF p
"""

_LOCK_MISSIONS = """
    SELECT um.id, um.user_id, um.mission_id, um.period_start, um.progress,
           m.period, m.requirements
    FROM user_missions um JOIN missions m ON m.id = um.mission_id
    WHERE um.user_id = ANY(:uids) AND um.period_start = ANY(:starts)
      AND um.status = 'active' AND m.is_active
    ORDER BY um.id
    FOR UPDATE OF um
"""

_WRITE = """
    WITH ep AS (
        UPDATE event_participations p SET progress = r.progress, status = r.status,
            progress_version = p.progress_version + 1, last_progress_at = now()
        FROM jsonb_to_recordset(:events) AS r(id bigint, progress bigint[], status text)
        WHERE p.id = r.id
        RETURNING p.id, p.progress_version, p.last_progress_at
    ), um AS (
        UPDATE user_missions u SET progress = r.progress, status = r.status,
            progress_version = u.progress_version + 1, last_progress_at = now()
        FROM jsonb_to_recordset(:missions) AS r(id bigint, progress bigint[], status text)
        WHERE u.id = r.id
        RETURNING u.id, u.progress_version, u.last_progress_at
    )
    SELECT 'e' AS kind, id, progress_version FROM ep
    UNION ALL SELECT 'm', id, progress_version FROM um
"""


_UIDS = {"uids": "bigint[]"}


def apply_facts(session: Session, facts: Sequence[Fact]) -> dict[str, int]:
    """Advance every matching participation, mission and achievement of the facts'
    players. Returns counts (for metrics and tests)."""
    if not facts:
        return {"events": 0, "missions": 0, "achievements": 0}
    by_user: dict[int, list[Fact]] = defaultdict(list)
    for f in facts:
        by_user[f.user_id].append(f)
    uids = sorted(by_user)

    pairs = {
        (f.user_id, period, period_start(period, f.ts.date()))
        for f in facts
        for period in ("daily", "weekly")
    }
    pg.execute(
        session,
        _ENSURE_MISSIONS,
        {"rows": [{"uid": u, "period": p, "start": s.isoformat()} for u, p, s in sorted(pairs)]},
    )

    since = min(f.ts for f in facts)
    changed_events = _advance_rows(
        pg.execute(session, _LOCK_PARTICIPATIONS, {"uids": uids, "since": since}, _UIDS),
        by_user,
        lambda row, f: max(row["joined_at"], row["starts_at"]) <= f.ts < row["ends_at"],
    )
    starts = sorted({s for _, _, s in pairs})
    changed_missions = _advance_rows(
        pg.execute(
            session, _LOCK_MISSIONS, {"uids": uids, "starts": starts}, {**_UIDS, "starts": "date[]"}
        ),
        by_user,
        lambda row, f: period_start(row["period"], f.ts.date()) == row["period_start"],
    )
    versions: dict[tuple[str, int], int] = {}
    if changed_events or changed_missions:
        result = pg.execute(
            session,
            _WRITE,
            {
                "events": [_write_row(r) for r in changed_events],
                "missions": [_write_row(r) for r in changed_missions],
            },
        )
        versions = {(r["kind"], r["id"]): r["progress_version"] for r in result}
    unlocked = achievements.unlock_and_announce(session, uids)

    touched: set[int] = set()
    outgoing = [
        *_progress_events(events.EVENT_PROGRESS, "e", changed_events, versions),
        *_progress_events(events.MISSION_PROGRESS, "m", changed_missions, versions),
    ]
    effects.add_many(session, outgoing)  # one INSERT for the batch's progress events
    touched.update(e["user_id"] for e in outgoing)
    touched.update(u["user_id"] for u in unlocked)
    for uid in touched:
        effects.of(session).touch(uid)
    return {
        "events": len(changed_events),
        "missions": len(changed_missions),
        "achievements": len(unlocked),
    }


def _advance_rows(rows: Any, by_user: dict[int, list[Fact]], counts_for: Any) -> list[dict]:
    changed = []
    for row in rows:
        mine = [f for f in by_user.get(row["user_id"], ()) if counts_for(row, f)]
        if not mine:
            continue
        reqs = row["requirements"]
        new = advance(reqs, row["progress"], mine)
        if new == list(row["progress"]):
            continue
        changed.append(
            {**row, "new": new, "status": "claimable" if complete(reqs, new) else "active"}
        )
    return changed


def _write_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "progress": r["new"], "status": r["status"]}


def _progress_events(
    event_type: str,
    kind: str,
    rows: list[dict[str, Any]],
    versions: dict[tuple[str, int], int],
) -> list[dict[str, Any]]:
    per_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        item = {
            "progress": progress_out(r["requirements"], r["new"]),
            "status": r["status"],
            "progress_version": versions[(kind, r["id"])],
        }
        if kind == "e":
            item["event_id"] = r["event_id"]
        else:
            item["mission_id"] = r["mission_id"]
            item["period_start"] = r["period_start"].isoformat()
        per_user[r["user_id"]].append(item)
    return [
        events.make_envelope(event_type, uid, {"items": items}, service="worker")
        for uid, items in per_user.items()
    ]
