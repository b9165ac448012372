"""Daily login streak (SPEC §3 "Profile, dashboard, streak"). Days are UTC dates.

Rules of a claim made on ``today`` (``last`` = the previous claim date):

* ``last >= today``: already claimed → 409 ``ALREADY_CLAIMED``, nothing granted;
* ``last == today - 1``: the streak continues (count + 1);
* ``last == today - 2`` (exactly one missed day, ``today - 1``) and a grace is
  available: the grace is spent, the streak continues (count + 1) and
  ``grace_used_on`` records the missed day it covered;
* otherwise (first claim ever, two or more missed days, or one missed day without a
  grace): the streak restarts at day 1.

Grace window (exact): a grace is available on day ``today`` when ``grace_used_on`` is
NULL or ``grace_used_on <= today - GRACE_WINDOW_DAYS`` (30). A grace that covered the
missed day D is therefore available again for claims made on D + 30 or later, i.e. the
next missed day it can cover is D + 29 or later.

The reward for day index n (the new count) is gold ``1000 + 200*(n-1)`` and xp
``50 + 25*(n-1)`` with n capped at 30 for the formula only; the count keeps growing
and ``longest`` tracks the best streak.

A claim is three statements in one transaction: create the player's streak row if
missing, lock it (``FOR UPDATE``, so one player's concurrent claims serialize and the
losers see today's date and get 409), then :func:`ccweb.wallet.ledger.settle` pays gold
+ XP with the streak update and the ``streak.claim`` outbox row attached. The ledger
key ``streak:{user_id}:{date}`` is UNIQUE, a second guard against paying a day twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import clock, effects, events
from ccweb.db import RetryTransaction
from ccweb.errors import Conflict, NotFound
from ccweb.outbox import writer
from ccweb.users.service import announce_level_up
from ccweb.wallet.ledger import BALANCE_FIELDS, Attachment, Entry, settle

GRACE_WINDOW_DAYS = 30
REWARD_CAP_DAY = 30
SOURCE_TYPE = "streak"

_ENSURE = text(
    """
    INSERT INTO streaks (user_id)
    SELECT id FROM users WHERE id = :uid
    ON CONFLICT (user_id) DO NOTHING
    """
)
_LOCK = text(
    """
    SELECT count, last_claim_date, grace_used_on, longest
    FROM streaks WHERE user_id = :uid FOR UPDATE
    """
)
_READ = text("SELECT count, last_claim_date, grace_used_on FROM streaks WHERE user_id = :uid")
_UPDATE_SQL = """UPDATE streaks SET count = :sk_count, last_claim_date = :sk_today,
        grace_used_on = :sk_grace, longest = :sk_longest, updated_at = now()
    WHERE user_id = :sk_uid AND EXISTS (SELECT 1 FROM upd)"""


def utc_today() -> date:
    """The current UTC day by the application clock (:mod:`ccweb.clock`): the unit of
    "once per day"."""
    return clock.utcnow().date()


def reward_for(day_index: int) -> dict[str, int]:
    """Reward of streak day ``day_index`` (>= 1); the formula is capped at day 30."""
    if day_index < 1:
        raise ValueError("day_index must be >= 1")
    n = min(day_index, REWARD_CAP_DAY)
    return {"gold": 1000 + 200 * (n - 1), "xp": 50 + 25 * (n - 1)}


def grace_available(grace_used_on: date | None, today: date) -> bool:
    """True when a claim on ``today`` may spend a grace (see the module docstring)."""
    return grace_used_on is None or grace_used_on <= today - timedelta(days=GRACE_WINDOW_DAYS)


def next_count(
    count: int, last_claim: date | None, grace_used_on: date | None, today: date
) -> tuple[int, bool] | None:
    """``(new count, grace used)`` for a claim on ``today``; None if already claimed."""
    if last_claim is None:
        return 1, False
    if last_claim >= today:
        return None
    gap = (today - last_claim).days
    if gap == 1:
        return count + 1, False
    if gap == 2 and grace_available(grace_used_on, today):
        return count + 1, True
    return 1, False


def claim(session: Session, user_id: int, today: date) -> dict[str, Any]:
    """Claim today's streak reward. Raises 409 ``ALREADY_CLAIMED`` (nothing written) if
    ``today`` was already claimed, :class:`NotFound` for an unknown user."""
    session.execute(_ENSURE, {"uid": user_id})
    row = session.execute(_LOCK, {"uid": user_id}).mappings().one_or_none()
    if row is None:
        raise NotFound("user not found", details={"user_id": user_id})
    nxt = next_count(int(row["count"]), row["last_claim_date"], row["grace_used_on"], today)
    if nxt is None:
        raise _already_claimed(today)
    count, grace_used = nxt
    reward = reward_for(count)
    payload = {"count": count, "day_index": count, "reward": reward, "grace_used": grace_used}
    key = f"streak:{user_id}:{today.isoformat()}"
    envelope = events.make_envelope(events.STREAK_CLAIM, user_id, payload, dedupe_key=key)
    update = Attachment(
        name="sk",
        sql=_UPDATE_SQL,
        params={
            "sk_uid": user_id,
            "sk_count": count,
            "sk_today": today,
            "sk_grace": today - timedelta(days=1) if grace_used else row["grace_used_on"],
            "sk_longest": max(int(row["longest"]), count),
        },
        types={"sk_grace": "date"},
    )
    try:
        settled = settle(
            session,
            user_id=user_id,
            entries=[
                Entry(reward["gold"], SOURCE_TYPE, key, None, f"streak day {count} ({today})")
            ],
            xp=reward["xp"],
            attachments=(update, writer.attachment(envelope, from_upd=BALANCE_FIELDS)),
        )
    except RetryTransaction:
        # The day's ledger key exists although the (locked) streak row says otherwise:
        # the day was paid already. Nothing of this transaction is kept.
        raise _already_claimed(today) from None
    envelope["payload"].update(settled.state())
    effects.of(session).publish(envelope)
    level_up = announce_level_up(session, user_id, settled, events.STREAK_CLAIM)
    effects.of(session).touch(user_id)
    return {
        "streak_count": count,
        "day_index": count,
        "reward": reward,
        "gold_balance": settled.balance,
        "level": settled.level,
        "experience_points": settled.experience_points,
        "level_up": level_up,
        "grace_used": grace_used,
    }


def status(conn: Connection | Session, user_id: int, today: date) -> dict[str, Any]:
    """``{count, claimed_today, next_reward, grace_available}`` as of ``today``.

    ``count`` is the effective streak: 0 when the next claim would restart at day 1.
    ``next_reward`` is what the next claim pays (tomorrow's if already claimed today).
    ``grace_available`` says whether a claim today could spend a grace.
    """
    row = conn.execute(_READ, {"uid": user_id}).mappings().one_or_none()
    return status_from_row(row, today)


def status_from_row(row: Mapping[Any, Any] | None, today: date) -> dict[str, Any]:
    """:func:`status` from an already-read streak row (``count``, ``last_claim_date``,
    ``grace_used_on``; None when the player never claimed)."""
    count = int(row["count"]) if row is not None else 0
    last = row["last_claim_date"] if row is not None else None
    grace_on = row["grace_used_on"] if row is not None else None
    nxt = next_count(count, last, grace_on, today)
    if nxt is None:  # claimed today: the next claim is tomorrow's, continuing the streak
        effective, next_index = count, count + 1
    else:
        next_index = nxt[0]
        effective = next_index - 1
    return {
        "count": effective,
        "claimed_today": nxt is None,
        "next_reward": reward_for(next_index),
        "grace_available": grace_available(grace_on, today),
    }


def _already_claimed(today: date) -> Conflict:
    return Conflict(
        "today's streak reward was already claimed",
        code="ALREADY_CLAIMED",
        details={"date": today.isoformat()},
    )
