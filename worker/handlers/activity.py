"""``activity`` group: per-player daily activity (events per UTC day, last event).

Feeds DAU and "last seen" for operators without touching the request path. Events the
worker derives from the player's own (progress, unlocks) are not counted again. A batch is
one transaction: dedupe by event id, then one upsert per (player, day).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ccweb import pg
from ccweb.db import in_transaction
from ccweb.events import NOT_PLAYER_ACTIVITY, parse_ts
from worker.dedupe import claim_new
from worker.entries import Entry

GROUP = "activity"

_UPSERT = """
    INSERT INTO user_daily_activity (user_id, day, events, last_event_type, last_event_at)
    SELECT r.user_id, r.day, r.n, r.last_type, r.last_at
    FROM jsonb_to_recordset(:rows) AS r(user_id bigint, day date, n int, last_type text,
                                        last_at timestamptz)
    ON CONFLICT (user_id, day) DO UPDATE SET
        events = user_daily_activity.events + EXCLUDED.events,
        last_event_type = EXCLUDED.last_event_type,
        last_event_at = GREATEST(user_daily_activity.last_event_at, EXCLUDED.last_event_at)
"""  # a prepared statement (ccweb.pg)


def _parse(entry: Entry) -> tuple[str, int | None, datetime, str]:
    env = entry.envelope
    ts = parse_ts(env["ts"])
    user_id = env["user_id"]
    if user_id is not None and not isinstance(user_id, int):
        raise ValueError(f"bad user_id {user_id!r}")
    return env["event_id"], user_id, ts, env["event_type"]


def handle(entries: Sequence[Entry]) -> None:
    # derived events and settlements are skipped by their stream field, without parsing; a malformed
    # entry fails the batch → isolated
    parsed = [_parse(e) for e in entries if e.event_type not in NOT_PLAYER_ACTIVITY]
    if not parsed:
        return

    def tx(session) -> None:  # type: ignore[no-untyped-def]
        fresh = claim_new(session, GROUP, (p[0] for p in parsed))
        agg: dict[tuple[int, object], dict] = {}
        for event_id, user_id, ts, event_type in parsed:
            if event_id not in fresh or user_id is None:
                continue
            fresh.discard(event_id)  # the same event twice in one batch counts once
            row = agg.setdefault(
                (user_id, ts.date()),
                {
                    "user_id": user_id,
                    "day": ts.date(),
                    "n": 0,
                    "last_type": event_type,
                    "last_at": ts,
                },
            )
            row["n"] += 1
            if ts >= row["last_at"]:
                row["last_type"], row["last_at"] = event_type, ts
        if agg:
            # one statement for the whole batch (executemany would be a round trip per row)
            pg.execute(
                session,
                _UPSERT,
                {
                    "rows": [
                        {
                            **row,
                            "day": row["day"].isoformat(),
                            "last_at": row["last_at"].isoformat(),
                        }
                        for row in agg.values()
                    ]
                },
            )

    in_transaction(tx)
