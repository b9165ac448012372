"""Achievements read the player's lifetime numbers (game stats + longest streak), so
they need no per-event bookkeeping: the worker re-checks the players of each batch,
and the API shows the same numbers as progress.

Metrics per player are keyed ``(type, game_type)`` with ``game_type`` None for the
total over all games. ``spend_gold``/``win_gold`` here are game bets/payouts only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects, events, pg
from ccweb.events import iso, parse_ts
from ccweb.liveops.rules import progress_out

Metrics = dict[tuple[str, str | None], int]

# prepared statements (ccweb.pg): the worker runs these for every batch
_METRICS = """
    SELECT user_id, game_type, sum(total)::bigint AS plays, sum(wins)::bigint AS wins,
           sum(total_bet)::bigint AS spend_gold, sum(total_payout)::bigint AS win_gold,
           max(max_win)::bigint AS max_win, NULL::bigint AS streak_days
    FROM game_stats WHERE user_id = ANY(:uids)
    GROUP BY GROUPING SETS ((user_id, game_type), (user_id))
    UNION ALL
    SELECT user_id, NULL, NULL, NULL, NULL, NULL, NULL, longest::bigint
    FROM streaks WHERE user_id = ANY(:uids)
"""
_ACTIVE = text(
    "SELECT id, code, title, description, requirements, reward_items FROM achievements"
    " WHERE is_active ORDER BY sort_order, id"
)
_UNLOCKED = (
    "SELECT user_id, achievement_id, unlocked_at, claimed_at FROM user_achievements"
    " WHERE user_id = ANY(:uids)"
)
_UIDS = {"uids": "bigint[]"}
_UNLOCK = text(
    """
    INSERT INTO user_achievements (user_id, achievement_id)
    SELECT u, a FROM unnest(CAST(:uids AS bigint[]), CAST(:aids AS bigint[])) AS t(u, a)
    ON CONFLICT DO NOTHING
    RETURNING user_id, achievement_id, unlocked_at
    """
)

_CATALOG_TTL_S = 2.0
_catalog: tuple[float, list[dict[str, Any]]] | None = None


def catalog(conn: Session | Connection) -> list[dict[str, Any]]:
    """Active achievements, cached for a couple of seconds per process (operators'
    edits show up within that)."""
    global _catalog
    now = time.monotonic()
    if _catalog is None or now - _catalog[0] > _CATALOG_TTL_S:
        _catalog = (now, [dict(r) for r in conn.execute(_ACTIVE).mappings()])
    return _catalog[1]


def forget_catalog() -> None:
    global _catalog
    _catalog = None


def metrics(conn: Session | Connection, user_ids: Iterable[int]) -> dict[int, Metrics]:
    return _metrics_of(pg.execute(conn, _METRICS, {"uids": list(user_ids)}, _UIDS))


def _metrics_of(rows: Iterable[Mapping[str, Any]]) -> dict[int, Metrics]:
    out: dict[int, Metrics] = {}
    for r in rows:
        m = out.setdefault(r["user_id"], {})
        for name in ("plays", "wins", "spend_gold", "win_gold", "max_win", "streak_days"):
            if r[name] is not None:
                m[(name, r["game_type"])] = int(r[name])
    return out


def values(requirements: Sequence[Mapping[str, Any]], m: Metrics) -> list[int]:
    """The player's current value per requirement, capped at its target."""
    return [min(m.get((r["type"], r.get("game_type")), 0), int(r["target"])) for r in requirements]


def unlock_due(session: Session, user_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Unlock every achievement the players now meet; returns the new unlocks (each
    with ``user_id``, ``achievement``, ``unlocked_at``). Idempotent: an unlock is a row
    with a primary key, so a re-check unlocks nothing twice."""
    achs = catalog(session)
    if not achs or not user_ids:
        return []
    have = {
        (r["user_id"], r["achievement_id"])
        for r in pg.execute(session, _UNLOCKED, {"uids": list(user_ids)}, _UIDS)
    }
    ms = metrics(session, user_ids)
    due = [
        (uid, a["id"])
        for uid in user_ids
        for a in achs
        if (uid, a["id"]) not in have
        and all(
            v >= int(r["target"])
            for v, r in zip(
                values(a["requirements"], ms.get(uid, {})), a["requirements"], strict=True
            )
        )
    ]
    if not due:
        return []
    by_id = {a["id"]: a for a in achs}
    rows = session.execute(
        _UNLOCK, {"uids": [d[0] for d in due], "aids": [d[1] for d in due]}
    ).mappings()
    return [
        {
            "user_id": r["user_id"],
            "achievement": by_id[r["achievement_id"]],
            "unlocked_at": r["unlocked_at"],
        }
        for r in rows
    ]


def unlock_and_announce(session: Session, user_ids: Sequence[int]) -> list[dict[str, Any]]:
    """:func:`unlock_due` plus an ``achievement.unlocked`` event per new unlock and a
    dashboard refresh for its player (both after commit)."""
    unlocked = unlock_due(session, user_ids)
    for u in unlocked:
        a = u["achievement"]
        effects.emit(
            session,
            events.ACHIEVEMENT_UNLOCKED,
            u["user_id"],
            {"achievement_id": a["id"], "code": a["code"], "title": a["title"]},
            dedupe_key=f"achievement:{a['id']}:{u['user_id']}",
        )
        effects.of(session).touch(u["user_id"])
    return unlocked


# What :func:`for_player_from_row` needs of players :uids besides the catalog, as two
# JSON columns (:func:`for_player` and the profile's one statement; types: ``UIDS_TYPES``).
PLAYER_SQL = f"""
    (SELECT coalesce(json_agg(x), '[]') FROM ({_METRICS}) x) AS ach_metric_rows,
    (SELECT coalesce(json_agg(x), '[]') FROM ({_UNLOCKED}) x) AS ach_unlocked_rows"""
UIDS_TYPES = _UIDS


def for_player(conn: Session | Connection, user_id: int) -> list[dict[str, Any]]:
    """Every active achievement with the player's progress and unlock/claim state."""
    row = pg.execute(conn, f"SELECT {PLAYER_SQL}", {"uids": [user_id]}, _UIDS)[0]
    return for_player_from_row(conn, user_id, row)


def for_player_from_row(
    conn: Session | Connection, user_id: int, row: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """:func:`for_player` from a :data:`PLAYER_SQL` row (JSON carries timestamps as
    PostgreSQL's text); ``conn`` only refreshes the per-process :func:`catalog`."""
    achs = catalog(conn)
    m = _metrics_of(row["ach_metric_rows"]).get(user_id, {})
    got = {r["achievement_id"]: r for r in row["ach_unlocked_rows"] if r["user_id"] == user_id}
    out = []
    for a in achs:
        u = got.get(a["id"])
        status = "locked" if u is None else ("claimed" if u["claimed_at"] else "claimable")
        if u is not None and not a["reward_items"]:
            status = "unlocked"
        out.append(
            {
                "id": a["id"],
                "code": a["code"],
                "title": a["title"],
                "description": a["description"],
                "requirements": a["requirements"],
                "reward_items": a["reward_items"],
                "status": status,
                "progress": progress_out(a["requirements"], values(a["requirements"], m)),
                "unlocked_at": _instant(u["unlocked_at"]) if u else None,
                "claimed_at": _instant(u["claimed_at"]) if u else None,
            }
        )
    return out


def _instant(value: str | None) -> str | None:
    return None if value is None else iso(parse_ts(value))
