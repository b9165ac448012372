"""Player API (SPEC §3 "Events, missions, achievements, rewards").

Claims accept ``X-Idempotency-Key`` (replays the original response); without it they
are still exactly-once (see :mod:`ccweb.liveops.claims`). Time is read once per
request, so a retried transaction cannot cross a deadline or midnight.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from pydantic import Field

from ccweb.auth.guard import auth_required
from ccweb.db import autocommit, in_transaction
from ccweb.events import utcnow
from ccweb.http.validation import QuerySchema, doc, validate
from ccweb.idempotency import service as idempotency
from ccweb.idempotency.service import idempotent
from ccweb.liveops import claims, service

bp = Blueprint("liveops", __name__, url_prefix="/api")

CLAIM_ERRORS = (404, 409)


class EventsQuery(QuerySchema):
    active: bool = Field(default=True, description="only events running now")


@bp.get("/events")
@doc("Events visible to the player, each with the player's participation (or null)")
@auth_required
@validate(query=EventsQuery)
def list_events(query: EventsQuery) -> Any:
    with autocommit() as conn:
        return service.list_events(conn, g.user_id, active=query.active, now=utcnow())


@bp.post("/events/<id:event_id>/participate")
@doc(
    "Join an event; joining again returns the same participation",
    errors=(403, 404, 409),
)
@auth_required
def participate(event_id: int) -> Any:
    now = utcnow()
    return in_transaction(lambda s: service.participate(s, g.user_id, event_id, now))


@bp.post("/events/<id:event_id>/claim")
@doc(
    "Claim a completed event's reward (409 NOT_CLAIMABLE / ALREADY_CLAIMED / EVENT_EXPIRED)",
    errors=CLAIM_ERRORS,
)
@auth_required
@idempotent
def claim_event(event_id: int) -> Any:
    now = utcnow()
    return idempotency.transaction(lambda s: claims.claim_event(s, g.user_id, event_id, now))


@bp.get("/missions")
@doc("Daily and weekly missions of the current periods, and achievements")
@auth_required
def missions() -> Any:
    today = utcnow().date()
    with autocommit() as conn:
        out = service.missions(conn, g.user_id, today)
        out["achievements"] = service.player_achievements(conn, g.user_id)
    return out


@bp.post("/missions/<id:mission_id>/claim")
@doc("Claim a completed mission of the current period", errors=CLAIM_ERRORS)
@auth_required
@idempotent
def claim_mission(mission_id: int) -> Any:
    today = utcnow().date()
    return idempotency.transaction(lambda s: claims.claim_mission(s, g.user_id, mission_id, today))


@bp.get("/achievements")
@doc("Every achievement with the player's progress, unlock and claim state")
@auth_required
def achievements() -> Any:
    with autocommit() as conn:
        return service.player_achievements(conn, g.user_id)


@bp.post("/achievements/<id:achievement_id>/claim")
@doc("Claim an unlocked achievement's reward", errors=CLAIM_ERRORS)
@auth_required
@idempotent
def claim_achievement(achievement_id: int) -> Any:
    return idempotency.transaction(lambda s: claims.claim_achievement(s, g.user_id, achievement_id))


@bp.get("/rewards/pending")
@doc("Rewards the player can claim now: {count, items:[{source_type, source_id, ...}]}")
@auth_required
def pending() -> Any:
    now = utcnow()
    with autocommit() as conn:
        items = service.pending(conn, g.user_id, now, now.date())
    return {"count": len(items), "items": items}
