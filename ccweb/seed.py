"""Idempotent seed: admin account, invite code 5858, demo players, default flags, and
LiveOps content (events, daily/weekly missions, achievements).

Safe to run on every start: each step checks what exists first. Later capabilities
(products) add their own steps here. Content is matched by title (events, missions) or
code (achievements) and only inserted when absent, so an operator's edits survive a
restart and a seeded event's window (relative to "now" at its creation) never moves.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.auth.passwords import hash_password
from ccweb.auth.service import grant_signup_bonus
from ccweb.config import get_settings
from ccweb.flags import service as flags
from ccweb.liveops import admin as liveops_admin

log = logging.getLogger(__name__)

INVITE_CODE = "5858"
DEMO_PASSWORD = "demo-pass-1234"
DEMO_PLAYERS = [
    ("demo1", "DemoOne", "STANDARD"),
    ("demo2", "DemoTwo", "PREMIUM"),
    ("demo3", "DemoThree", "VIP"),
]


SEED_EVENT_DAYS = 30


def _gold(amount: int) -> dict[str, Any]:
    return {"type": "gold", "amount": amount}


def _req(rtype: str, target: int, game_type: str | None = None) -> dict[str, Any]:
    req: dict[str, Any] = {"type": rtype, "target": target}
    if game_type is not None:
        req["game_type"] = game_type
    return req


SEED_EVENTS: list[dict[str, Any]] = [
    {
        "title": "Spin Marathon",
        "description": "Play 50 rounds of any game.",
        "type": "limited",
        "requirements": [_req("plays", 50)],
        "reward_items": [_gold(5000)],
    },
    {
        "title": "Slot Lover",
        "description": "Play 20 slot rounds and win 5 of them.",
        "type": "limited",
        "requirements": [_req("plays", 20, "slot"), _req("wins", 5, "slot")],
        "reward_items": [_gold(3000), {"type": "xp", "amount": 100}],
    },
    {
        "title": "High Roller",
        "description": "Bet 20,000 gold in total.",
        "type": "limited",
        "requirements": [_req("spend_gold", 20000)],
        "reward_items": [_gold(8000)],
    },
    {
        "title": "Streak Keeper",
        "description": "Reach a 3-day login streak.",
        "type": "progression",
        "requirements": [_req("streak_days", 3)],
        "reward_items": [_gold(2000)],
    },
]
SEED_MISSIONS: list[dict[str, Any]] = [
    {
        "title": "Play 10 rounds",
        "period": "daily",
        "sort_order": 10,
        "requirements": [_req("plays", 10)],
        "reward_items": [_gold(500)],
    },
    {
        "title": "Win 3 rounds",
        "period": "daily",
        "sort_order": 20,
        "requirements": [_req("wins", 3)],
        "reward_items": [_gold(300), {"type": "xp", "amount": 50}],
    },
    {
        "title": "Claim the daily streak",
        "period": "daily",
        "sort_order": 30,
        "requirements": [_req("streak_days", 1)],
        "reward_items": [_gold(200)],
    },
    {
        "title": "Play 100 rounds",
        "period": "weekly",
        "sort_order": 10,
        "requirements": [_req("plays", 100)],
        "reward_items": [_gold(5000)],
    },
    {
        "title": "Win 10,000 gold",
        "period": "weekly",
        "sort_order": 20,
        "requirements": [_req("win_gold", 10000)],
        "reward_items": [_gold(3000)],
    },
]
SEED_ACHIEVEMENTS: list[dict[str, Any]] = [
    {
        "code": "first_win",
        "title": "First Win",
        "description": "Win your first round.",
        "sort_order": 10,
        "requirements": [_req("wins", 1)],
        "reward_items": [_gold(500)],
    },
    {
        "code": "spins_100",
        "title": "Century",
        "description": "Play 100 rounds.",
        "sort_order": 20,
        "requirements": [_req("plays", 100)],
        "reward_items": [_gold(1000)],
    },
    {
        "code": "big_win",
        "title": "Big Win",
        "description": "Win 10,000 gold in a single round.",
        "sort_order": 30,
        "requirements": [_req("max_win", 10000)],
        "reward_items": [_gold(2000)],
    },
    {
        "code": "streak_7",
        "title": "Week Streak",
        "description": "Reach a 7-day login streak.",
        "sort_order": 40,
        "requirements": [_req("streak_days", 7)],
        "reward_items": [_gold(1500)],
    },
    {
        "code": "high_roller",
        "title": "High Roller",
        "description": "Bet 100,000 gold in total.",
        "sort_order": 50,
        "requirements": [_req("spend_gold", 100000)],
        "reward_items": [_gold(2500)],
    },
]


def _seed_liveops(session: Session) -> int:
    """Insert the default content that is absent; returns how many rows were added."""
    # Two seeds racing (two processes starting at once) would both see "absent".
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('ccweb.seed.liveops'))"))
    added = 0
    now = session.execute(text("SELECT date_trunc('minute', now())")).scalar_one()
    for event in SEED_EVENTS:
        exists = session.execute(
            text("SELECT 1 FROM live_events WHERE title = :t"), {"t": event["title"]}
        ).first()
        if exists is None:
            liveops_admin.insert_event(
                session,
                {**event, "starts_at": now, "ends_at": now + timedelta(days=SEED_EVENT_DAYS)},
            )
            added += 1
    for mission in SEED_MISSIONS:
        exists = session.execute(
            text("SELECT 1 FROM missions WHERE title = :t AND period = :p"),
            {"t": mission["title"], "p": mission["period"]},
        ).first()
        if exists is None:
            liveops_admin.insert_mission(session, mission)
            added += 1
    for achievement in SEED_ACHIEVEMENTS:
        if liveops_admin.insert_achievement(session, achievement) is not None:
            added += 1
    if added:
        effects.of(session).touch_content()
        log.info("seeded %d liveops definitions", added)
    return added


def _ensure_user(
    session: Session,
    site_id: str,
    nickname: str,
    password: str,
    *,
    is_admin: bool = False,
    tier: str = "STANDARD",
) -> int:
    existing = session.execute(
        text("SELECT id FROM users WHERE site_id = :s"), {"s": site_id}
    ).scalar()
    if existing is not None:
        return int(existing)
    uid = int(
        session.execute(
            text(
                "INSERT INTO users (site_id, nickname, password_hash, is_admin, tier)"
                " VALUES (:s, :n, :p, :a, :t) RETURNING id"
            ),
            {"s": site_id, "n": nickname, "p": hash_password(password), "a": is_admin, "t": tier},
        ).scalar_one()
    )
    grant_signup_bonus(session, uid)
    log.info("seeded user %s", site_id)
    return uid


def run(session: Session) -> None:
    session.execute(
        text(
            "INSERT INTO invite_codes (code, max_uses) VALUES (:c, NULL)"
            " ON CONFLICT (code) DO NOTHING"
        ),
        {"c": INVITE_CODE},
    )
    if (
        session.execute(
            text("SELECT 1 FROM feature_flags WHERE key = 'signup.invite_required'")
        ).first()
        is None
    ):
        flags.upsert_flag(
            session,
            "signup.invite_required",
            value=True,
            client_visible=True,
            description="Signup needs a valid invite code",
            rollout_percent=100,
            target_tiers=None,
        )
    _ensure_user(
        session, "admin", "Admin", get_settings().admin_password, is_admin=True, tier="VIP"
    )
    for site_id, nickname, tier in DEMO_PLAYERS:
        _ensure_user(session, site_id, nickname, DEMO_PASSWORD, tier=tier)
    _seed_liveops(session)
