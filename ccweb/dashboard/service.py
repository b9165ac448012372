"""The profile and the one-shot dashboard (SPEC §3), rendered from one read connection.

Sections that later capabilities fill (events, missions, pending rewards, shop,
recommendations, achievements, participations) are present and empty until then.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from ccweb.actions.service import recent as recent_actions
from ccweb.games.history import recent_sessions, stats
from ccweb.streak.service import status as streak_status
from ccweb.users.service import get_user, public_user


def xp_to_next_level(xp: int, level: int) -> int:
    return max(0, level * 500 - xp)


def _profile_core(conn: Connection, user_id: int) -> dict[str, Any]:
    user = public_user(get_user(conn, user_id))
    user["xp_to_next_level"] = xp_to_next_level(user["experience_points"], user["level"])
    return user


def profile(conn: Connection, user_id: int) -> dict[str, Any]:
    return {
        **_profile_core(conn, user_id),
        "stats": stats(conn, user_id),
        "achievements": [],
        "recent_actions": recent_actions(conn, user_id, 10),
        "active_participations": [],
    }


def dashboard(conn: Connection, user_id: int, today: date) -> dict[str, Any]:
    return {
        "profile": _profile_core(conn, user_id),
        "streak": streak_status(conn, user_id, today),
        "active_events": [],
        "missions": {"daily": [], "weekly": []},
        "pending_rewards": 0,
        "recent_sessions": recent_sessions(conn, user_id, 3),
        "shop_highlights": [],
        "recommendations": [],
    }
