"""Claiming event, mission and achievement rewards: paid exactly once, through the
wallet ledger.

A claim reads the player's row to explain a refusal (409 ``NOT_CLAIMABLE``,
``ALREADY_CLAIMED``, ``EVENT_EXPIRED``), then pays in ONE statement
(:func:`ccweb.wallet.ledger.settle`) whose guard flips the row to ``claimed`` only if it
is still claimable (and, for events, the window is still open). Concurrent claims of
the same reward queue on that row lock; the first flips it, the others find nothing to
flip (:class:`GuardRejected`), re-read and get ``ALREADY_CLAIMED``. The gold entry's
ledger key ``{source_type}:{source_id}:{user_id}`` is UNIQUE, a second line of defence.
The claim's events (``event.claim``/``mission.claim`` and ``reward.granted``), the item
grants and the row update are attached to the same statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import effects, events
from ccweb.errors import Conflict, NotFound
from ccweb.events import iso
from ccweb.liveops import achievements
from ccweb.liveops.rules import period_start, reward_totals
from ccweb.outbox import writer
from ccweb.users import inventory
from ccweb.users.service import announce_level_up
from ccweb.wallet.ledger import Attachment, Entry, GuardRejected, settle

_EVENT_STATE = text(
    """
    SELECT e.title, e.reward_items, e.ends_at, e.is_active, p.id AS row_id, p.status
    FROM live_events e
    LEFT JOIN event_participations p ON p.event_id = e.id AND p.user_id = :uid
    WHERE e.id = :sid
    """
)
_EVENT_GUARD = """UPDATE event_participations SET status = 'claimed', claimed_at = now(),
        progress_version = progress_version + 1
    WHERE id = :c_row AND status = 'claimable'
      AND EXISTS (SELECT 1 FROM live_events WHERE id = :c_sid AND ends_at > :c_now)
    RETURNING progress_version, claimed_at"""

_MISSION_STATE = text(
    """
    SELECT m.title, m.reward_items, m.is_active, um.id AS row_id, um.status
    FROM missions m
    LEFT JOIN user_missions um ON um.mission_id = m.id AND um.user_id = :uid
         AND um.period_start = CASE m.period WHEN 'daily' THEN :day ELSE :week END
    WHERE m.id = :sid
    """
)
_MISSION_GUARD = """UPDATE user_missions SET status = 'claimed', claimed_at = now(),
        progress_version = progress_version + 1
    WHERE id = :c_row AND status = 'claimable'
    RETURNING progress_version, claimed_at"""

_ACHIEVEMENT_STATE = text(
    """
    SELECT a.title, a.reward_items, a.is_active, ua.achievement_id AS row_id,
           CASE WHEN ua.achievement_id IS NULL THEN NULL
                WHEN ua.claimed_at IS NULL THEN 'claimable' ELSE 'claimed' END AS status
    FROM achievements a
    LEFT JOIN user_achievements ua ON ua.achievement_id = a.id AND ua.user_id = :uid
    WHERE a.id = :sid
    """
)
_ACHIEVEMENT_GUARD = """UPDATE user_achievements SET claimed_at = now()
    WHERE user_id = :c_uid AND achievement_id = :c_row AND claimed_at IS NULL
    RETURNING 0 AS progress_version, claimed_at"""


def claim_event(session: Session, user_id: int, event_id: int, now: datetime) -> dict[str, Any]:
    def refusal(state: Mapping[str, Any]) -> Exception | None:
        if state["status"] != "claimed" and state["ends_at"] <= now:
            return Conflict("the event has ended", code="EVENT_EXPIRED")
        return None

    return _claim(
        session,
        user_id,
        source_type="event",
        source_id=event_id,
        read=lambda: _state(session, _EVENT_STATE, {"uid": user_id, "sid": event_id}),
        guard_sql=_EVENT_GUARD,
        now=now,
        extra_refusal=refusal,
        claim_event_type=events.EVENT_CLAIM,
    )


def claim_mission(session: Session, user_id: int, mission_id: int, today: date) -> dict[str, Any]:
    params = {
        "uid": user_id,
        "sid": mission_id,
        "day": period_start("daily", today),
        "week": period_start("weekly", today),
    }
    return _claim(
        session,
        user_id,
        source_type="mission",
        source_id=mission_id,
        read=lambda: _state(session, _MISSION_STATE, params),
        guard_sql=_MISSION_GUARD,
        claim_event_type=events.MISSION_CLAIM,
    )


def claim_achievement(session: Session, user_id: int, achievement_id: int) -> dict[str, Any]:
    # the worker unlocks achievements within a moment of the play; checking here too
    # means a player who just reached one never sees NOT_CLAIMABLE for it
    achievements.unlock_and_announce(session, [user_id])
    return _claim(
        session,
        user_id,
        source_type="achievement",
        source_id=achievement_id,
        read=lambda: _state(session, _ACHIEVEMENT_STATE, {"uid": user_id, "sid": achievement_id}),
        guard_sql=_ACHIEVEMENT_GUARD,
        claim_event_type=None,
    )


def _state(session: Session, sql: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    row = session.execute(sql, params).mappings().one_or_none()
    return dict(row) if row is not None else None


def _claim(
    session: Session,
    user_id: int,
    *,
    source_type: str,
    source_id: int,
    read: Callable[[], dict[str, Any] | None],
    guard_sql: str,
    claim_event_type: str | None,
    now: datetime | None = None,
    extra_refusal: Callable[[Mapping[str, Any]], Exception | None] | None = None,
) -> dict[str, Any]:
    """``now`` (the request's clock reading, ``ccweb.clock``) is the instant the guard
    judges a window by, so the SQL and the Python refusal cannot disagree."""

    def check() -> dict[str, Any]:
        state = read()
        if state is None or not state["is_active"]:
            raise NotFound(f"{source_type} not found", details={f"{source_type}_id": source_id})
        err = extra_refusal(state) if extra_refusal else None
        if err is None and state["status"] == "claimed":
            err = Conflict("the reward was already claimed", code="ALREADY_CLAIMED")
        if err is None and state["status"] != "claimable":
            err = Conflict(
                "the reward is not claimable yet",
                code="NOT_CLAIMABLE",
                details={"status": state["status"] or "not_joined"},
            )
        if err is not None:
            raise err
        return state

    state = check()
    try:
        return _pay(
            session, user_id, source_type, source_id, state, guard_sql, claim_event_type, now
        )
    except GuardRejected:
        check()  # a concurrent claim (or the clock) won: explain why with the fresh state
        raise Conflict("claim raced; retry", code="IN_PROGRESS") from None


def _pay(
    session: Session,
    user_id: int,
    source_type: str,
    source_id: int,
    state: Mapping[str, Any],
    guard_sql: str,
    claim_event_type: str | None,
    now: datetime | None,
) -> dict[str, Any]:
    items = state["reward_items"]
    gold, xp, things = reward_totals(items)
    key = f"{source_type}:{state['row_id'] if source_type == 'mission' else source_id}:{user_id}"
    payload = {
        f"{source_type}_id": source_id,
        "source_type": source_type,
        "source_id": source_id,
        "reward_items": items,
        "ledger_key": key,
    }
    envelopes = [
        events.make_envelope(events.REWARD_GRANTED, user_id, dict(payload), dedupe_key=key)
    ]
    attachments = [
        writer.attachment(envelopes[0], "rg", from_upd={"gold_balance": "upd.gold_balance"})
    ]
    if claim_event_type:
        claim_env = events.make_envelope(claim_event_type, user_id, payload, dedupe_key=f"c:{key}")
        envelopes.append(claim_env)
        attachments.append(writer.attachment(claim_env, "cl"))
    if things:
        attachments.append(inventory.grant_attachment(user_id, things))
    settled = settle(
        session,
        user_id=user_id,
        entries=[
            Entry(
                gold, source_type, key, source_id, f"{source_type} reward: {state['title']}"[:255]
            )
        ],
        xp=xp,
        guard=Attachment(
            name="guard",
            sql=guard_sql,
            params={"c_row": state["row_id"], "c_sid": source_id, "c_uid": user_id, "c_now": now},
            types={"c_now": "timestamptz"},
            returning="(SELECT progress_version FROM guard) AS progress_version,"
            " (SELECT claimed_at FROM guard) AS claimed_at",
        ),
        attachments=tuple(attachments),
    )
    envelopes[0]["payload"]["gold_balance"] = settled.state()["gold_balance"]
    effects.of(session).publish(*envelopes)
    level_up = announce_level_up(session, user_id, settled, f"{source_type}.claim")
    effects.of(session).touch(user_id)
    return {
        f"{source_type}_id": source_id,
        "source_type": source_type,
        "status": "claimed",
        "reward_items": items,
        "progress_version": settled.extra["progress_version"],
        "gold_balance": settled.balance,
        "experience_points": settled.experience_points,
        "level": settled.level,
        "level_up": level_up,
        "claimed_at": iso(settled.extra["claimed_at"]),
    }
