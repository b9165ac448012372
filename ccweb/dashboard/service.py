"""The profile and the one-shot dashboard (SPEC §3), rendered from one read connection.

The dashboard's ``shop_highlights`` are up to three products the player may buy now
(:data:`ccweb.shop.catalog.HIGHLIGHTS_SQL`: tier allowed, in stock, not a ``limit_once``
product they already bought; highlighted first), in the catalog's shape; the profile
lists the player's ``inventory`` and ``purchases_count``. ``recommendations`` are the
items of ``GET /api/recommendations`` (:mod:`ccweb.recommendations.service`, its
candidates read by the same statement). Cached views re-render on any change of
the player (worker progress and their purchases included) or of LiveOps or shop content,
at least every ``VIEW_TTL_S``, and (dashboard) as soon as an event or product window
opens or closes; claims and purchases always check the clock anyway. Another player's
purchase that sells a product out does not re-render this player's dashboard: its
highlight may show the old stock until the view's TTL (the purchase itself answers
``OUT_OF_STOCK``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from ccweb import pg
from ccweb.actions.service import RECENT_SQL, recent_from_row
from ccweb.errors import NotFound
from ccweb.events import utcnow
from ccweb.games.history import STATS_SQL, session_out, stats_from_row
from ccweb.liveops import achievements
from ccweb.liveops import service as liveops
from ccweb.recommendations import service as recommendations
from ccweb.shop.catalog import HIGHLIGHTS_SQL, product_out
from ccweb.streak.service import status_from_row
from ccweb.users.inventory import ITEMS_SQL, items_from_row
from ccweb.users.service import public_user


def xp_to_next_level(xp: int, level: int) -> int:
    return max(0, level * 500 - xp)


# The user columns both views render (``public_user`` plus what it needs).
_USER_COLS = """u.id, u.site_id, u.nickname, u.is_admin, u.tier, u.level, u.experience_points,
           u.gold_balance, u.created_at"""

# Everything the profile reads, in one round trip: each section is a column its owning
# module defines (rows carried as JSON) and renders with its ``*_from_row`` helper, the
# same fragment and helper its own endpoint uses.
_PROFILE = f"""
    SELECT {_USER_COLS},
           {STATS_SQL},
           {achievements.PLAYER_SQL},
           {RECENT_SQL},
           {liveops.EVENTS_SQL},
           {ITEMS_SQL},
           (SELECT count(*) FROM shop_purchases WHERE user_id = u.id) AS purchases_count,
           {liveops.NEXT_WINDOW_SQL}
    FROM users u
    WHERE u.id = :uid
"""
_PROFILE_TYPES = achievements.UIDS_TYPES
_RECENT_ACTIONS = 10


def profile(
    conn: Connection, user_id: int, now: datetime | None = None
) -> tuple[dict[str, Any], float | None]:
    """The profile, and the seconds until an event window opens or closes (its
    ``active_participations`` change then, so a cached copy must not outlive that)."""
    now = now or utcnow()
    params = {
        **liveops.participations_params(user_id, now),
        "uids": [user_id],
        "actions_limit": _RECENT_ACTIONS,
    }
    rows = pg.execute(conn, _PROFILE, params, _PROFILE_TYPES)
    if not rows:
        raise NotFound("user not found", details={"user_id": user_id})
    row = rows[0]
    user = public_user(row)
    user["xp_to_next_level"] = xp_to_next_level(user["experience_points"], user["level"])
    return {
        **user,
        "stats": stats_from_row(row),
        "achievements": achievements.for_player_from_row(conn, user_id, row),
        "recent_actions": recent_from_row(row),
        "active_participations": liveops.participations_from_row(row, now),
        "inventory": items_from_row(row),
        "purchases_count": int(row["purchases_count"]),
    }, liveops.seconds_from_row(row, now)


# Everything the dashboard reads, in one round trip: the user, the streak row, the last
# three sessions (one row per session; the other columns repeat), the LiveOps sections,
# the shop highlights and the recommendation candidates (uncorrelated subqueries, so
# PostgreSQL runs them once).
_DASHBOARD = f"""
    SELECT {liveops.SECTIONS_SQL},
           {HIGHLIGHTS_SQL},
           {recommendations.CANDIDATES_SQL},
           {_USER_COLS},
           s.count AS s_count, s.last_claim_date AS s_last, s.grace_used_on AS s_grace,
           gs.id AS gs_id, gs.game_type AS gs_game_type, gs.rounds AS gs_rounds,
           gs.total_bet AS gs_total_bet, gs.total_payout AS gs_total_payout,
           gs.started_at AS gs_started_at, gs.ended_at AS gs_ended_at
    FROM users u
    LEFT JOIN streaks s ON s.user_id = u.id
    LEFT JOIN LATERAL (SELECT * FROM game_sessions WHERE user_id = u.id
                       ORDER BY id DESC LIMIT 3) gs ON true
    WHERE u.id = :uid
    ORDER BY gs.id DESC NULLS LAST
"""


def dashboard(
    conn: Connection, user_id: int, today: date, now: datetime | None = None
) -> tuple[dict[str, Any], float | None]:
    """The dashboard, and the seconds until an event or product window opens or closes
    (a cached copy must not outlive that)."""
    now = now or utcnow()
    rows = pg.execute(conn, _DASHBOARD, {"uid": user_id, **liveops.sections_params(now, today)})
    if not rows:
        raise NotFound("user not found", details={"user_id": user_id})
    first = rows[0]
    user = public_user(first)
    user["xp_to_next_level"] = xp_to_next_level(user["experience_points"], user["level"])
    streak_row = (
        None
        if first["s_count"] is None
        else {
            "count": first["s_count"],
            "last_claim_date": first["s_last"],
            "grace_used_on": first["s_grace"],
        }
    )
    sessions = [
        session_out({k[3:]: v for k, v in r.items() if k.startswith("gs_")} | {"id": r["gs_id"]})
        for r in rows
        if r["gs_id"] is not None
    ]
    changes = [first["next_window_change"], first["shop_next_window_change"]]
    change = min((c for c in changes if c is not None), default=None)
    valid_for = (change - now).total_seconds() if change is not None else None
    sections = liveops.render_sections(first, now, today)
    return {
        "profile": user,
        "streak": status_from_row(streak_row, today),
        **sections,
        "recent_sessions": sessions,
        "shop_highlights": [product_out(r) for r in first["shop_rows"]],
        "recommendations": recommendations.from_row(first, sections)["items"],
    }, valid_for
