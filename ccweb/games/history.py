"""Sessions, recent rounds and the per-game stats of SPEC §3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects, events, pg
from ccweb.errors import Conflict, NotFound
from ccweb.events import iso
from ccweb.games.models import GAME_TYPES


def start_session(session: Session, user_id: int, game_type: str) -> dict[str, Any]:
    row = session.execute(
        text(
            "INSERT INTO game_sessions (user_id, game_type) VALUES (:u, :g)"
            " RETURNING id, started_at"
        ),
        {"u": user_id, "g": game_type},
    ).one()
    # game.session.start/end (SPEC §4) feed the `game.session` topic and analytics
    effects.emit(
        session,
        events.GAME_SESSION_START,
        user_id,
        {"session_id": row.id, "game_type": game_type},
        dedupe_key=f"session:{row.id}:start",
    )
    return {"session_id": row.id, "game_type": game_type, "started_at": iso(row.started_at)}


def end_session(session: Session, user_id: int, session_id: int) -> dict[str, Any]:
    row = session.execute(
        text("""UPDATE game_sessions SET ended_at = now()
                WHERE id = :id AND user_id = :u AND ended_at IS NULL
                RETURNING id, game_type, rounds, total_bet, total_payout, started_at,
                          ended_at"""),
        {"id": session_id, "u": user_id},
    ).one_or_none()
    if row is None:
        exists = session.execute(
            text("SELECT 1 FROM game_sessions WHERE id = :id AND user_id = :u"),
            {"id": session_id, "u": user_id},
        ).first()
        if exists is None:
            raise NotFound("session not found", details={"session_id": session_id})
        raise Conflict(
            "session already ended", code="ALREADY_ENDED", details={"session_id": session_id}
        )
    out = session_out(row._mapping)
    effects.emit(
        session,
        events.GAME_SESSION_END,
        user_id,
        {k: out[k] for k in ("session_id", "game_type", "rounds", "total_bet", "total_payout")}
        | {"gold_delta": out["net"], "duration_s": out["duration_s"]},
        dedupe_key=f"session:{session_id}:end",
    )
    return out


def session_out(r: Any) -> dict[str, Any]:
    ended = r["ended_at"]
    duration = (ended - r["started_at"]).total_seconds() if ended else None
    return {
        "session_id": r["id"],
        "game_type": r["game_type"],
        "rounds": r["rounds"],
        "total_bet": r["total_bet"],
        "total_payout": r["total_payout"],
        "net": r["total_payout"] - r["total_bet"],
        "duration_s": None if duration is None else round(duration, 3),
        "started_at": iso(r["started_at"]),
        "ended_at": iso(ended),
    }


def recent_sessions(conn: Connection | Session, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT id, game_type, rounds, total_bet, total_payout, started_at, ended_at"
            " FROM game_sessions WHERE user_id = :u ORDER BY id DESC LIMIT :limit"
        ),
        {"u": user_id, "limit": limit},
    ).mappings()
    return [session_out(r) for r in rows]


def recent_rounds(conn: Connection | Session, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT id, game_type, session_id, bet, payout, outcome, server_seed_hash,"
            " client_seed, nonce, detail, config_version, created_at FROM game_rounds"
            " WHERE user_id = :u"
            " ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        {"u": user_id, "limit": limit},
    ).mappings()
    return [
        {
            "round_id": r["id"],
            **{
                k: r[k]
                for k in (
                    "game_type",
                    "session_id",
                    "bet",
                    "payout",
                    "outcome",
                    "server_seed_hash",
                    "client_seed",
                    "nonce",
                    "detail",
                    "config_version",
                )
            },
            "created_at": iso(r["created_at"]),
        }
        for r in rows
    ]


# Player :uid's rows of ``game_stats`` as one JSON column, for :func:`stats` and for
# statements that read several sections at once (the profile).
STATS_SQL = """(SELECT coalesce(json_agg(x), '[]') FROM (SELECT game_type, total, wins, losses,
    max_win FROM game_stats WHERE user_id = :uid) x) AS stats_rows"""


def stats(conn: Connection | Session, user_id: int) -> dict[str, Any]:
    return stats_from_row(pg.execute(conn, f"SELECT {STATS_SQL}", {"uid": user_id})[0])


def stats_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly the SPEC keys from a :data:`STATS_SQL` row: aggregate and per game (every
    game present, zeros if unplayed). ``max_win`` is the largest payout of a winning
    round; ``win_rate`` = wins / plays."""
    rows = {r["game_type"]: r for r in row["stats_rows"]}
    games = {
        g: {
            "total": int(rows[g]["total"]) if g in rows else 0,
            "wins": int(rows[g]["wins"]) if g in rows else 0,
            "losses": int(rows[g]["losses"]) if g in rows else 0,
            "max_win": int(rows[g]["max_win"]) if g in rows else 0,
        }
        for g in GAME_TYPES
    }
    total = sum(g["total"] for g in games.values())
    wins = sum(g["wins"] for g in games.values())
    return {
        "total_games_played": total,
        "total_wins": wins,
        "total_losses": sum(g["losses"] for g in games.values()),
        "win_rate": round(wins / total, 4) if total else 0.0,
        "overall_max_win": max(g["max_win"] for g in games.values()),
        "games": games,
    }
