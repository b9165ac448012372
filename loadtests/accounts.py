"""Returning players: accounts created in the database before the run.

Why: a game with a few hundred concurrent players has a few sign-ups a minute, not the
ten a second a load test's ramp-up would make if every simulated player were new — and
a ramp of sign-ups measures argon2 and the invite code's row, not the game. So most
players (``1 - LOADTEST_SIGNUP_SHARE``) start by logging in to one of these accounts (a
real argon2 verify on the server) and the rest sign up with invite code 5858.

The accounts are made the way the seed makes its demo players (one INSERT, the signup
gold through :func:`ccweb.auth.service.grant_signup_bonus`, i.e. a ledger row), with one
password hash shared by all of them (hashing once, not once per account, is the point).
Their names are written one per line to a file the Locust process reads
(``LOADTEST_ACCOUNTS``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from ccweb import db
from ccweb.auth.passwords import hash_password
from ccweb.auth.service import grant_signup_bonus
from ccweb.config import Settings, set_settings
from loadtests.targets import PASSWORD

_INSERT = text(
    """
    INSERT INTO users (site_id, nickname, password_hash)
    SELECT :prefix || g, :prefix || g, :pw FROM generate_series(1, :n) AS g
    RETURNING id, site_id
    """
)


def create(database_url: str, count: int, path: Path) -> list[str]:
    """``count`` new accounts (password :data:`PASSWORD`); their site ids go to ``path``."""
    if count <= 0:
        path.write_text("")
        return []
    set_settings(Settings.from_env(database_url=database_url))
    prefix = f"lt{uuid.uuid4().hex[:8]}_"  # site_id and nickname: ≤ 20 chars, [a-z0-9_]
    try:
        with db.unit_of_work() as session:
            rows = session.execute(
                _INSERT, {"prefix": prefix, "n": count, "pw": hash_password(PASSWORD)}
            ).all()
            for user_id, _site_id in rows:
                grant_signup_bonus(session, user_id)
    finally:
        db.engine().dispose()
    names = [site_id for _uid, site_id in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(names) + "\n")
    return names
