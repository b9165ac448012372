"""Operator CRUD for LiveOps content: events, mission templates, achievements.

Every write records an audit row and bumps the content version (cached dashboards
render again) in the caller's transaction.

Updates lock the definition row ``FOR UPDATE`` before checking for player rows. That
lock mode conflicts with the ``FOR KEY SHARE`` lock PostgreSQL's foreign-key check takes
on the definition when a player row is inserted, so a player joining concurrently either
commits first (and the ``IN_USE`` check sees the row) or waits until the edit commits
(and joins the edited definition). Requirements can therefore never change under an
existing progress array, whose positions are aligned with the requirement list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.admin import audit, crud
from ccweb.errors import Conflict, Duplicate, ValidationFailed
from ccweb.events import iso
from ccweb.liveops.views import event_out

JSON_COLUMNS = ("requirements", "reward_items")
EVENT_COLUMNS = (
    "title",
    "description",
    "type",
    "starts_at",
    "ends_at",
    "requirements",
    "reward_items",
    "tier_required",
    "is_active",
)
MISSION_COLUMNS = (
    "title",
    "description",
    "period",
    "requirements",
    "reward_items",
    "is_active",
    "sort_order",
)
ACHIEVEMENT_COLUMNS = (
    "code",
    "title",
    "description",
    "requirements",
    "reward_items",
    "is_active",
    "sort_order",
)
# Fields that cannot change once players have rows for the definition (409 IN_USE).
EVENT_LOCKED = ("requirements", "reward_items")
MISSION_LOCKED = ("requirements", "reward_items", "period")
ACHIEVEMENT_LOCKED = ("requirements", "reward_items")


# ---------------------------------------------------------------------------- shapes


def _counts(row: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, int]:
    return {k: int(row[k] or 0) for k in keys}


def event_def_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """The admin shape of an event: the player shape plus operator fields and counts."""
    return {
        **event_out(row),
        "is_active": row["is_active"],
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "counts": _counts(row, ("joined", "claimable", "claimed")),
    }


def mission_def_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """A mission template; counts are over all periods' player rows."""
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "period": row["period"],
        "requirements": row["requirements"],
        "reward_items": row["reward_items"],
        "is_active": row["is_active"],
        "sort_order": row["sort_order"],
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "counts": _counts(row, ("joined", "claimable", "claimed")),
    }


def achievement_def_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": row["code"],
        "title": row["title"],
        "description": row["description"],
        "requirements": row["requirements"],
        "reward_items": row["reward_items"],
        "is_active": row["is_active"],
        "sort_order": row["sort_order"],
        "created_at": iso(row["created_at"]),
        "counts": _counts(row, ("unlocked", "claimed")),
    }


# ---------------------------------------------------------------------------- SQL

_PARTICIPATION_COUNTS = """
    LEFT JOIN LATERAL (
        SELECT count(*) AS joined,
               count(*) FILTER (WHERE status = 'claimable') AS claimable,
               count(*) FILTER (WHERE status = 'claimed') AS claimed
        FROM {table} p WHERE p.{fk} = d.id
    ) c ON true
"""
_EVENT_SELECT = "SELECT d.*, c.* FROM live_events d" + _PARTICIPATION_COUNTS.format(
    table="event_participations", fk="event_id"
)
_MISSION_SELECT = "SELECT d.*, c.* FROM missions d" + _PARTICIPATION_COUNTS.format(
    table="user_missions", fk="mission_id"
)
_ACHIEVEMENT_SELECT = """
    SELECT d.*, c.* FROM achievements d
    LEFT JOIN LATERAL (
        SELECT count(*) AS unlocked, count(claimed_at) AS claimed
        FROM user_achievements p WHERE p.achievement_id = d.id
    ) c ON true
"""


def _check_in_use(
    session: Session,
    row: Mapping[str, Any],
    fields: Mapping[str, Any],
    locked: tuple[str, ...],
    player_table: str,
    fk: str,
) -> None:
    """409 ``IN_USE`` when a locked field would change while player rows exist."""
    changing = sorted(k for k in locked if k in fields and fields[k] != row[k])
    if not changing:
        return
    used = session.execute(
        text(f"SELECT 1 FROM {player_table} WHERE {fk} = :id LIMIT 1"), {"id": row["id"]}
    ).first()
    if used is not None:
        raise Conflict(
            "players already have progress on this definition; create a new one instead",
            code="IN_USE",
            details={"fields": changing},
        )


# ---------------------------------------------------------------------------- events


def insert_event(session: Session, fields: Mapping[str, Any]) -> int:
    """Insert an event definition (no audit: callers record it). Returns its id."""
    return crud.insert_row(
        session,
        "live_events",
        {k: fields[k] for k in EVENT_COLUMNS if k in fields},
        JSON_COLUMNS,
    )


def create_event(session: Session, *, admin_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    event_id = insert_event(session, fields)
    audit.record(session, admin_id, "event.create", "event", event_id, crud.jsonable(fields))
    effects.of(session).touch_content()
    return get_event(session, event_id)


def update_event(
    session: Session,
    *,
    admin_id: int,
    event_id: int,
    fields: Mapping[str, Any],
    version: int | None,
) -> dict[str, Any]:
    row = crud.lock_row(session, "live_events", event_id, "event")
    crud.check_version(row, version)
    starts_at = fields.get("starts_at", row["starts_at"])
    ends_at = fields.get("ends_at", row["ends_at"])
    if ends_at <= starts_at:
        raise ValidationFailed(
            "ends_at must be after starts_at",
            details={"starts_at": iso(starts_at), "ends_at": iso(ends_at)},
        )
    _check_in_use(session, row, fields, EVENT_LOCKED, "event_participations", "event_id")
    crud.update_row(session, "live_events", event_id, fields, JSON_COLUMNS, versioned=True)
    audit.record(
        session,
        admin_id,
        "event.update",
        "event",
        event_id,
        {"changes": crud.jsonable(fields), "version": row["version"] + 1},
    )
    effects.of(session).touch_content()
    return get_event(session, event_id)


def get_event(session: Session, event_id: int) -> dict[str, Any]:
    return event_def_out(crud.one_row(session, _EVENT_SELECT, event_id, "event"))


def list_events(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = crud.many_rows(session, _EVENT_SELECT, "d.id DESC", active, limit, offset)
    return {"items": [event_def_out(r) for r in rows]}


# ---------------------------------------------------------------------------- missions


def insert_mission(session: Session, fields: Mapping[str, Any]) -> int:
    return crud.insert_row(
        session, "missions", {k: fields[k] for k in MISSION_COLUMNS if k in fields}, JSON_COLUMNS
    )


def create_mission(session: Session, *, admin_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    mission_id = insert_mission(session, fields)
    audit.record(session, admin_id, "mission.create", "mission", mission_id, crud.jsonable(fields))
    effects.of(session).touch_content()
    return get_mission(session, mission_id)


def update_mission(
    session: Session,
    *,
    admin_id: int,
    mission_id: int,
    fields: Mapping[str, Any],
    version: int | None,
) -> dict[str, Any]:
    row = crud.lock_row(session, "missions", mission_id, "mission")
    crud.check_version(row, version)
    _check_in_use(session, row, fields, MISSION_LOCKED, "user_missions", "mission_id")
    crud.update_row(session, "missions", mission_id, fields, JSON_COLUMNS, versioned=True)
    audit.record(
        session,
        admin_id,
        "mission.update",
        "mission",
        mission_id,
        {"changes": crud.jsonable(fields), "version": row["version"] + 1},
    )
    effects.of(session).touch_content()
    return get_mission(session, mission_id)


def get_mission(session: Session, mission_id: int) -> dict[str, Any]:
    return mission_def_out(crud.one_row(session, _MISSION_SELECT, mission_id, "mission"))


def list_missions(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = crud.many_rows(
        session, _MISSION_SELECT, "d.period, d.sort_order, d.id", active, limit, offset
    )
    return {"items": [mission_def_out(r) for r in rows]}


# ---------------------------------------------------------------------------- achievements


def insert_achievement(session: Session, fields: Mapping[str, Any]) -> int | None:
    """Insert an achievement; None when its ``code`` is taken."""
    return crud.insert_unique(
        session,
        "achievements",
        {k: fields[k] for k in ACHIEVEMENT_COLUMNS if k in fields},
        JSON_COLUMNS,
        unique="code",
    )


def create_achievement(
    session: Session, *, admin_id: int, fields: Mapping[str, Any]
) -> dict[str, Any]:
    achievement_id = insert_achievement(session, fields)
    if achievement_id is None:
        raise Duplicate("achievement code exists", details={"code": fields["code"]})
    audit.record(
        session,
        admin_id,
        "achievement.create",
        "achievement",
        achievement_id,
        crud.jsonable(fields),
    )
    effects.of(session).touch_content()
    return get_achievement(session, achievement_id)


def update_achievement(
    session: Session, *, admin_id: int, achievement_id: int, fields: Mapping[str, Any]
) -> dict[str, Any]:
    row = crud.lock_row(session, "achievements", achievement_id, "achievement")
    _check_in_use(session, row, fields, ACHIEVEMENT_LOCKED, "user_achievements", "achievement_id")
    crud.update_row(session, "achievements", achievement_id, fields, JSON_COLUMNS, versioned=False)
    audit.record(
        session,
        admin_id,
        "achievement.update",
        "achievement",
        achievement_id,
        {"changes": crud.jsonable(fields)},
    )
    effects.of(session).touch_content()
    return get_achievement(session, achievement_id)


def get_achievement(session: Session, achievement_id: int) -> dict[str, Any]:
    return achievement_def_out(
        crud.one_row(session, _ACHIEVEMENT_SELECT, achievement_id, "achievement")
    )


def list_achievements(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = crud.many_rows(session, _ACHIEVEMENT_SELECT, "d.sort_order, d.id", active, limit, offset)
    return {"items": [achievement_def_out(r) for r in rows]}
