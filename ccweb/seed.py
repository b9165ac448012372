"""Idempotent seed: admin account, invite code 5858, demo players, default flags.

Safe to run on every start: each step checks what exists first. Later capabilities
(events, missions, products) add their own steps here.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb.auth.passwords import hash_password
from ccweb.auth.service import grant_signup_bonus
from ccweb.config import get_settings
from ccweb.flags import service as flags

log = logging.getLogger(__name__)

INVITE_CODE = "5858"
DEMO_PASSWORD = "demo-pass-1234"
DEMO_PLAYERS = [
    ("demo1", "DemoOne", "STANDARD"),
    ("demo2", "DemoTwo", "PREMIUM"),
    ("demo3", "DemoThree", "VIP"),
]


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
