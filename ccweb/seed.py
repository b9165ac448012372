"""Idempotent seed: admin account, invite code 5858, demo players, default flags,
LiveOps content (events, daily/weekly missions, achievements) and shop products.

Safe to run on every start: each step checks what exists first. Content is matched by
title (events, missions), code (achievements) or sku (products) and only inserted when
absent, so an operator's edits survive a restart (a sold-out limited package is not
restocked) and a seeded window (relative to "now" at its creation) never moves.
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
from ccweb.player_versions import shop_stock_key
from ccweb.shop.products import insert_product
from ccweb.shop.schemas import ProductIn

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


def _items(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"code": code, "quantity": qty} for code, qty in pairs]


# Every category; a limit_once starter pack, a limited package with a window, a
# PREMIUM-only package, three conversions. ``window_days`` gives a product a window from
# the seed's "now"; the others are always on sale.
SEED_PRODUCTS: list[dict[str, Any]] = [
    {
        "sku": "pkg_starter",
        "name": "Starter Pack",
        "description": "Once per player: 2,000 gold and a lucky charm for 500 gold.",
        "category": "package",
        "price_gold": 500,
        "gold_amount": 2000,
        "items": _items(("lucky_charm", 1)),
        "limit_once": True,
        "highlight": True,
        "sort_order": 10,
    },
    {
        "sku": "pkg_limited_weekend",
        "name": "Limited Weekend Chest",
        "description": "Only 10 in stock: 12,000 gold and a golden ticket.",
        "category": "package",
        "price_gold": 5000,
        "gold_amount": 12000,
        "items": _items(("golden_ticket", 1)),
        "stock": 10,
        "window_days": SEED_EVENT_DAYS,
        "highlight": True,
        "sort_order": 20,
    },
    {
        "sku": "pkg_premium_vault",
        "name": "Premium Vault",
        "description": "PREMIUM and VIP players: 30,000 gold and a premium frame.",
        "category": "package",
        "price_gold": 20000,
        "gold_amount": 30000,
        "items": _items(("premium_frame", 1)),
        "tier_required": "PREMIUM",
        "highlight": True,
        "sort_order": 30,
    },
    {
        "sku": "pkg_gold_bundle",
        "name": "Gold Bundle",
        "description": "1,100 gold for 1,000.",
        "category": "package",
        "price_gold": 1000,
        "gold_amount": 1100,
        "sort_order": 40,
    },
    {
        "sku": "item_lucky_charm",
        "name": "Lucky Charm",
        "category": "item",
        "price_gold": 300,
        "items": _items(("lucky_charm", 1)),
        "sort_order": 50,
    },
    {
        "sku": "item_spin_tickets",
        "name": "Spin Tickets x5",
        "category": "item",
        "price_gold": 800,
        "items": _items(("spin_ticket", 5)),
        "sort_order": 60,
    },
    {
        "sku": "conv_points_1000",
        "name": "10,000 gold for 1,000 points",
        "category": "conversion",
        "points_price": 1000,
        "gold_amount": 10000,
        "sort_order": 70,
    },
    {
        "sku": "conv_points_5000",
        "name": "55,000 gold for 5,000 points",
        "category": "conversion",
        "points_price": 5000,
        "gold_amount": 55000,
        "sort_order": 80,
    },
    {
        "sku": "conv_points_10000",
        "name": "120,000 gold for 10,000 points",
        "category": "conversion",
        "points_price": 10000,
        "gold_amount": 120000,
        "sort_order": 90,
    },
]


def _seed_products(session: Session) -> int:
    """Insert the seed products whose sku is absent; returns how many were added."""
    added = limited = 0
    now = session.execute(text("SELECT date_trunc('minute', now())")).scalar_one()
    for spec in SEED_PRODUCTS:
        spec = dict(spec)
        days = spec.pop("window_days", None)
        if days is not None:
            spec.update(starts_at=now, ends_at=now + timedelta(days=days))
        fields = ProductIn.model_validate(spec).fields()  # the operator API's checks
        if insert_product(session, fields) is not None:
            added += 1
            limited += fields["stock_total"] is not None
    if added:
        fx = effects.of(session)
        fx.touch_content()
        if limited:
            fx.bump(shop_stock_key())
        log.info("seeded %d shop products", added)
    return added


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
        flags.put(session, "signup.invite_required", {"value": True})
    _ensure_user(
        session, "admin", "Admin", get_settings().admin_password, is_admin=True, tier="VIP"
    )
    for site_id, nickname, tier in DEMO_PLAYERS:
        _ensure_user(session, site_id, nickname, DEMO_PASSWORD, tier=tier)
    _seed_liveops(session)
    _seed_products(session)


# Recommendation content (issue 13): the AtRisk segment's win-back offer, which
# ccweb.recommendations.rules recognises by its ``pkg_return`` sku prefix and offers to
# no other segment; once per player. Seeded with the other products (idempotent by sku).
RECOMMENDATION_PRODUCTS: list[dict[str, Any]] = [
    {
        "sku": "pkg_return_welcome_back",
        "name": "Welcome Back Pack",
        "description": "Once per player, for players we missed: 3,000 gold and a lucky charm"
        " for 500 gold.",
        "category": "package",
        "price_gold": 500,
        "gold_amount": 3000,
        "items": _items(("lucky_charm", 1)),
        "limit_once": True,
        "sort_order": 35,
    },
]
SEED_PRODUCTS.extend(RECOMMENDATION_PRODUCTS)
