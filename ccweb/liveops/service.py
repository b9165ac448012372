"""What players read and join: events with their participation, missions of the
current period, achievements, pending rewards.

Visibility: an event is listed when it is active (operator switch) and the player's
tier meets its ``tier_required``. ``active=true`` lists events whose window contains
now; ``active=false`` lists upcoming ones and those ended within the last 30 days too.
A participation's ``expired`` status is derived from ``ends_at`` (see ``models``).

Time: the route reads :mod:`ccweb.clock` once and passes ``now``; every window test here
compares with that parameter, never PostgreSQL's ``now()``. ``joined_at`` is that same
instant too: the worker counts facts stamped at or after it (envelope ``ts``, the same
clock), so a round played right after joining is not lost to a skew between the web
host's clock and the database's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects, events, pg
from ccweb.errors import Conflict, Forbidden, NotFound
from ccweb.liveops import achievements
from ccweb.liveops.rules import period_start
from ccweb.liveops.views import event_out, mission_out, participation_out
from ccweb.users.models import TIERS

_TIERS_SQL = "ARRAY[" + ", ".join(f"'{t}'" for t in TIERS) + "]"  # constants, lowest first
_TIER_OK = f"""(e.tier_required IS NULL
        OR array_position({_TIERS_SQL}, e.tier_required)
           <= array_position({_TIERS_SQL}, (SELECT tier FROM users WHERE id = :uid)))"""

_EVENT_COLS = """e.id, e.title, e.description, e.type, e.starts_at, e.ends_at, e.requirements,
    e.reward_items, e.tier_required"""
_PART_COLS = """p.status, p.progress, p.progress_version, p.joined_at, p.last_progress_at,
    p.claimed_at"""

# The dashboard reads run as prepared statements (ccweb.pg): planning these joins cost
# more than executing them.
_LIST_EVENTS = f"""
    SELECT {_EVENT_COLS}, {_PART_COLS}
    FROM live_events e
    LEFT JOIN event_participations p ON p.event_id = e.id AND p.user_id = :uid
    WHERE e.is_active AND {_TIER_OK}
      AND CASE WHEN :active THEN e.starts_at <= :now AND e.ends_at > :now
               ELSE e.ends_at > :now - interval '30 days' END
    ORDER BY e.ends_at, e.id
    LIMIT 200
"""
_EVENT = text(
    f"SELECT {_EVENT_COLS}, e.is_active, {_TIER_OK} AS tier_ok FROM live_events e WHERE e.id = :eid"
)
_JOIN = text(
    """
    INSERT INTO event_participations (user_id, event_id, progress, joined_at)
    SELECT :uid, e.id, array_fill(0::bigint, ARRAY[jsonb_array_length(e.requirements)]), :now
    FROM live_events e WHERE e.id = :eid
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING id
    """
)
_PARTICIPATION = text(
    f"SELECT {_PART_COLS} FROM event_participations p WHERE p.user_id = :uid AND p.event_id = :eid"
)
_MISSIONS = """
    SELECT m.id, m.title, m.description, m.period, m.requirements, m.reward_items, m.sort_order,
           um.id AS um_id, um.status, um.progress, um.progress_version, um.claimed_at
    FROM missions m
    LEFT JOIN user_missions um ON um.mission_id = m.id AND um.user_id = :uid
         AND um.period_start = CASE m.period WHEN 'daily' THEN :day ELSE :week END
    WHERE m.is_active
    ORDER BY m.sort_order, m.id
"""
_PENDING = """
    SELECT 'event' AS source_type, e.id AS source_id, e.title, e.reward_items
    FROM event_participations p JOIN live_events e ON e.id = p.event_id
    WHERE p.user_id = :uid AND p.status = 'claimable' AND e.is_active AND e.ends_at > :now
    UNION ALL
    SELECT 'mission', m.id, m.title, m.reward_items
    FROM user_missions um JOIN missions m ON m.id = um.mission_id
    WHERE um.user_id = :uid AND um.status = 'claimable' AND m.is_active
      AND um.period_start = CASE m.period WHEN 'daily' THEN :day ELSE :week END
    UNION ALL
    SELECT 'achievement', a.id, a.title, a.reward_items
    FROM user_achievements ua JOIN achievements a ON a.id = ua.achievement_id
    WHERE ua.user_id = :uid AND ua.claimed_at IS NULL AND a.is_active
      AND jsonb_array_length(a.reward_items) > 0
"""


def list_events(
    conn: Connection | Session, user_id: int, *, active: bool, now: datetime
) -> list[dict[str, Any]]:
    rows = pg.execute(conn, _LIST_EVENTS, {"uid": user_id, "active": active, "now": now})
    return render_events(rows, now)


def render_events(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    return [_with_participation(r, now) for r in rows]


def _with_participation(r: Any, now: datetime) -> dict[str, Any]:
    out = event_out(r)
    out["participation"] = (
        None if r["status"] is None else participation_out(r["requirements"], r, r["ends_at"], now)
    )
    return out


def participate(session: Session, user_id: int, event_id: int, now: datetime) -> dict[str, Any]:
    """Join an event (idempotent: joining again returns the same participation)."""
    ev = session.execute(_EVENT, {"eid": event_id, "uid": user_id}).mappings().one_or_none()
    if ev is None or not ev["is_active"]:
        raise NotFound("event not found", details={"event_id": event_id})
    if not ev["tier_ok"]:
        raise Forbidden(
            f"requires tier {ev['tier_required']}", details={"tier_required": ev["tier_required"]}
        )
    created = (
        session.execute(_JOIN, {"uid": user_id, "eid": event_id, "now": now}).first() is not None
    )
    if created:
        # checked after the insert attempt, so a player who joined in time keeps the
        # same answer (their participation) after the window closes
        if now >= ev["ends_at"]:
            raise Conflict("the event has ended", code="EVENT_EXPIRED")
        if now < ev["starts_at"]:
            raise Conflict(
                "the event has not started",
                code="NOT_STARTED",
                details={"starts_at": events.iso(ev["starts_at"])},
            )
        effects.emit(session, events.EVENT_PARTICIPATE, user_id, {"event_id": event_id})
        effects.of(session).touch(user_id)
    p = session.execute(_PARTICIPATION, {"uid": user_id, "eid": event_id}).mappings().one()
    return {
        "event_id": event_id,
        **participation_out(ev["requirements"], p, ev["ends_at"], now),
    }


def missions(conn: Connection | Session, user_id: int, today: date) -> dict[str, Any]:
    """``{daily, weekly}`` for the current periods (rows not created yet read as zero)."""
    day, week = period_start("daily", today), period_start("weekly", today)
    return render_missions(
        pg.execute(conn, _MISSIONS, {"uid": user_id, "day": day, "week": week}), today
    )


def render_missions(rows: list[dict[str, Any]], today: date) -> dict[str, Any]:
    day, week = period_start("daily", today), period_start("weekly", today)
    out: dict[str, Any] = {"daily": [], "weekly": []}
    for r in rows:
        start = day if r["period"] == "daily" else week
        out[r["period"]].append(mission_out(r, start, r if r["um_id"] is not None else None))
    return out


def pending(
    conn: Connection | Session, user_id: int, now: datetime, today: date
) -> list[dict[str, Any]]:
    """Everything the player can claim right now."""
    params = {
        "uid": user_id,
        "now": now,
        "day": period_start("daily", today),
        "week": period_start("weekly", today),
    }
    return pg.execute(conn, _PENDING, params)


# When the next event window opens or closes: a cached view that lists events must not
# outlive that moment.
_NEXT_WINDOW_CHANGE = """SELECT min(t) FROM (SELECT starts_at AS t FROM live_events
                         WHERE is_active AND starts_at > :now
                         UNION ALL
                         SELECT ends_at FROM live_events WHERE is_active AND ends_at > :now) b"""


NEXT_WINDOW_SQL = f"({_NEXT_WINDOW_CHANGE}) AS next_window_change"


def seconds_to_next_window_change(conn: Connection | Session, now: datetime) -> float | None:
    row = pg.execute(conn, f"SELECT {NEXT_WINDOW_SQL}", {"now": now})[0]
    return seconds_from_row(row, now)


def seconds_from_row(row: dict[str, Any], now: datetime) -> float | None:
    """Seconds from ``now`` to a :data:`NEXT_WINDOW_SQL` row's change (None: no window)."""
    change = row["next_window_change"]
    return (change - now).total_seconds() if change is not None else None


# The dashboard's LiveOps sections as three columns of one statement (see
# ccweb.dashboard.service): the same queries, rows carried as JSON, so the home screen
# costs one round trip. JSON turns timestamps into text; ``_TIMES`` names the columns
# turned back into datetimes before the same renderers run.
# ``EVENTS_SQL`` alone (``:active`` true) is what the profile's ``active_participations``
# read.
EVENTS_SQL = f"""
    (SELECT coalesce(json_agg(x ORDER BY x.ends_at, x.id), '[]') FROM ({_LIST_EVENTS}) x)
        AS ev_rows"""
SECTIONS_SQL = f"""{EVENTS_SQL},
    (SELECT coalesce(json_agg(x ORDER BY x.sort_order, x.id), '[]') FROM ({_MISSIONS}) x)
        AS m_rows,
    (SELECT count(*) FROM ({_PENDING}) x) AS pending_n,
    {NEXT_WINDOW_SQL}"""
_TIMES = ("starts_at", "ends_at", "joined_at", "last_progress_at", "claimed_at")


def sections_params(now: datetime, today: date) -> dict[str, Any]:
    return {
        "active": True,
        "now": now,
        "day": period_start("daily", today),
        "week": period_start("weekly", today),
    }


def render_sections(row: dict[str, Any], now: datetime, today: date) -> dict[str, Any]:
    """``active_events``, ``missions``, ``pending_rewards`` from a :data:`SECTIONS_SQL`
    row."""
    return {
        "active_events": render_events(_typed(row["ev_rows"]), now),
        "missions": render_missions(_typed(row["m_rows"]), today),
        "pending_rewards": int(row["pending_n"]),
    }


def _typed(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        for k in _TIMES:
            if item.get(k) is not None:
                item[k] = datetime.fromisoformat(item[k])
    return items


def active_participations(
    conn: Connection | Session, user_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The player's joined events that are still running and not yet claimed."""
    row = pg.execute(conn, f"SELECT {EVENTS_SQL}", participations_params(user_id, now))[0]
    return participations_from_row(row, now)


def participations_params(user_id: int, now: datetime) -> dict[str, Any]:
    """The parameters of :data:`EVENTS_SQL` for :func:`participations_from_row`."""
    return {"uid": user_id, "active": True, "now": now}


def participations_from_row(row: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    return [
        e
        for e in render_events(_typed(row["ev_rows"]), now)
        if e["participation"] and e["participation"]["status"] in ("active", "claimable")
    ]


def player_achievements(conn: Connection | Session, user_id: int) -> list[dict[str, Any]]:
    return achievements.for_player(conn, user_id)
