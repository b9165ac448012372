"""Operator API for LiveOps content (``/api/admin/events``, ``/missions``,
``/achievements``): create, partial update, list and read; every write is audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.auth.guard import auth_required
from ccweb.db import unit_of_work
from ccweb.http.validation import doc, validate
from ccweb.liveops import admin
from ccweb.liveops.schemas import (
    AchievementIn,
    AchievementPatch,
    ContentQuery,
    EventIn,
    EventPatch,
    MissionIn,
    MissionPatch,
)

bp = Blueprint("liveops_admin", __name__, url_prefix="/api/admin")


# ---------------------------------------------------------------------------- events


@bp.post("/events")
@doc("Create a live event", status=201, errors=(403,))
@auth_required(admin=True)
@validate(body=EventIn)
def create_event(body: EventIn) -> Any:
    with unit_of_work() as s:
        return admin.create_event(s, admin_id=g.user_id, fields=body.fields()), 201


@bp.patch("/events/<id:event_id>")
@doc(
    "Update an event (optional version check; requirements/rewards are frozen once"
    " players joined: 409 IN_USE)",
    errors=(403, 404, 409),
)
@auth_required(admin=True)
@validate(body=EventPatch)
def update_event(event_id: int, body: EventPatch) -> Any:
    with unit_of_work() as s:
        return admin.update_event(
            s, admin_id=g.user_id, event_id=event_id, fields=body.changes(), version=body.version
        )


@bp.get("/events")
@doc("Live events with participation counts, newest first", errors=(403,))
@auth_required(admin=True)
@validate(query=ContentQuery)
def list_events(query: ContentQuery) -> Any:
    with unit_of_work() as s:
        return admin.list_events(s, active=query.active, limit=query.limit, offset=query.offset)


@bp.get("/events/<id:event_id>")
@doc("One live event with participation counts", errors=(403, 404))
@auth_required(admin=True)
def get_event(event_id: int) -> Any:
    with unit_of_work() as s:
        return admin.get_event(s, event_id)


# ---------------------------------------------------------------------------- missions


@bp.post("/missions")
@doc("Create a daily or weekly mission", status=201, errors=(403,))
@auth_required(admin=True)
@validate(body=MissionIn)
def create_mission(body: MissionIn) -> Any:
    with unit_of_work() as s:
        return admin.create_mission(s, admin_id=g.user_id, fields=body.fields()), 201


@bp.patch("/missions/<id:mission_id>")
@doc(
    "Update a mission (optional version check; requirements/rewards/period are frozen"
    " once players have rows: 409 IN_USE)",
    errors=(403, 404, 409),
)
@auth_required(admin=True)
@validate(body=MissionPatch)
def update_mission(mission_id: int, body: MissionPatch) -> Any:
    with unit_of_work() as s:
        return admin.update_mission(
            s,
            admin_id=g.user_id,
            mission_id=mission_id,
            fields=body.changes(),
            version=body.version,
        )


@bp.get("/missions")
@doc("Mission templates with player-row counts", errors=(403,))
@auth_required(admin=True)
@validate(query=ContentQuery)
def list_missions(query: ContentQuery) -> Any:
    with unit_of_work() as s:
        return admin.list_missions(s, active=query.active, limit=query.limit, offset=query.offset)


@bp.get("/missions/<id:mission_id>")
@doc("One mission template with player-row counts", errors=(403, 404))
@auth_required(admin=True)
def get_mission(mission_id: int) -> Any:
    with unit_of_work() as s:
        return admin.get_mission(s, mission_id)


# ---------------------------------------------------------------------------- achievements


@bp.post("/achievements")
@doc("Create an achievement (code unique: 409 DUPLICATE)", status=201, errors=(403, 409))
@auth_required(admin=True)
@validate(body=AchievementIn)
def create_achievement(body: AchievementIn) -> Any:
    with unit_of_work() as s:
        return admin.create_achievement(s, admin_id=g.user_id, fields=body.fields()), 201


@bp.patch("/achievements/<id:achievement_id>")
@doc(
    "Update an achievement (requirements/rewards are frozen once unlocked: 409 IN_USE)",
    errors=(403, 404, 409),
)
@auth_required(admin=True)
@validate(body=AchievementPatch)
def update_achievement(achievement_id: int, body: AchievementPatch) -> Any:
    with unit_of_work() as s:
        return admin.update_achievement(
            s, admin_id=g.user_id, achievement_id=achievement_id, fields=body.changes()
        )


@bp.get("/achievements")
@doc("Achievements with unlock/claim counts", errors=(403,))
@auth_required(admin=True)
@validate(query=ContentQuery)
def list_achievements(query: ContentQuery) -> Any:
    with unit_of_work() as s:
        return admin.list_achievements(
            s, active=query.active, limit=query.limit, offset=query.offset
        )


@bp.get("/achievements/<id:achievement_id>")
@doc("One achievement with unlock/claim counts", errors=(403, 404))
@auth_required(admin=True)
def get_achievement(achievement_id: int) -> Any:
    with unit_of_work() as s:
        return admin.get_achievement(s, achievement_id)
