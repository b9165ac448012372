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
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb import effects
from ccweb.admin import audit
from ccweb.errors import Conflict, Duplicate, NotFound, ValidationFailed
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


def _jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Audit payloads are JSONB: datetimes become ISO strings."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}


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
_ACTIVE_FILTER = " WHERE (CAST(:active AS boolean) IS NULL OR d.is_active = :active)"


def _insert(session: Session, table: str, fields: Mapping[str, Any]) -> int:
    cols = list(fields)
    stmt = text(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
        " RETURNING id"
    ).bindparams(*(bindparam(c, type_=JSONB) for c in cols if c in JSON_COLUMNS))
    return int(session.execute(stmt, dict(fields)).scalar_one())


def _update(
    session: Session, table: str, row_id: int, fields: Mapping[str, Any], versioned: bool
) -> None:
    sets = [f"{c} = :{c}" for c in fields]
    if versioned:
        sets += ["version = version + 1", "updated_at = now()"]
    stmt = text(f"UPDATE {table} SET {', '.join(sets)} WHERE id = :id").bindparams(
        *(bindparam(c, type_=JSONB) for c in fields if c in JSON_COLUMNS)
    )
    session.execute(stmt, {**fields, "id": row_id})


def _lock(session: Session, table: str, row_id: int, what: str) -> Mapping[str, Any]:
    row = (
        session.execute(text(f"SELECT * FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"{what} not found", details={"id": row_id})
    return dict(row)


def _check_version(row: Mapping[str, Any], expected: int | None) -> None:
    if expected is not None and expected != row["version"]:
        raise Conflict(
            "the definition changed since it was read",
            code="VERSION_CONFLICT",
            details={"expected_version": expected, "current_version": row["version"]},
        )


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


def _one(session: Session, select: str, row_id: int, what: str) -> Mapping[str, Any]:
    row = session.execute(text(select + " WHERE d.id = :id"), {"id": row_id}).mappings().first()
    if row is None:
        raise NotFound(f"{what} not found", details={"id": row_id})
    return dict(row)


def _many(
    session: Session, select: str, order: str, active: bool | None, limit: int, offset: int
) -> list[Mapping[str, Any]]:
    return [
        dict(r)
        for r in session.execute(
            text(select + _ACTIVE_FILTER + f" ORDER BY {order} LIMIT :limit OFFSET :offset"),
            {"active": active, "limit": limit, "offset": offset},
        ).mappings()
    ]


# ---------------------------------------------------------------------------- events


def insert_event(session: Session, fields: Mapping[str, Any]) -> int:
    """Insert an event definition (no audit: callers record it). Returns its id."""
    return _insert(session, "live_events", {k: fields[k] for k in EVENT_COLUMNS if k in fields})


def create_event(session: Session, *, admin_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    event_id = insert_event(session, fields)
    audit.record(session, admin_id, "event.create", "event", event_id, _jsonable(fields))
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
    row = _lock(session, "live_events", event_id, "event")
    _check_version(row, version)
    starts_at = fields.get("starts_at", row["starts_at"])
    ends_at = fields.get("ends_at", row["ends_at"])
    if ends_at <= starts_at:
        raise ValidationFailed(
            "ends_at must be after starts_at",
            details={"starts_at": iso(starts_at), "ends_at": iso(ends_at)},
        )
    _check_in_use(session, row, fields, EVENT_LOCKED, "event_participations", "event_id")
    _update(session, "live_events", event_id, fields, versioned=True)
    audit.record(
        session,
        admin_id,
        "event.update",
        "event",
        event_id,
        {"changes": _jsonable(fields), "version": row["version"] + 1},
    )
    effects.of(session).touch_content()
    return get_event(session, event_id)


def get_event(session: Session, event_id: int) -> dict[str, Any]:
    return event_def_out(_one(session, _EVENT_SELECT, event_id, "event"))


def list_events(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = _many(session, _EVENT_SELECT, "d.id DESC", active, limit, offset)
    return {"items": [event_def_out(r) for r in rows]}


# ---------------------------------------------------------------------------- missions


def insert_mission(session: Session, fields: Mapping[str, Any]) -> int:
    return _insert(session, "missions", {k: fields[k] for k in MISSION_COLUMNS if k in fields})


def create_mission(session: Session, *, admin_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    mission_id = insert_mission(session, fields)
    audit.record(session, admin_id, "mission.create", "mission", mission_id, _jsonable(fields))
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
    row = _lock(session, "missions", mission_id, "mission")
    _check_version(row, version)
    _check_in_use(session, row, fields, MISSION_LOCKED, "user_missions", "mission_id")
    _update(session, "missions", mission_id, fields, versioned=True)
    audit.record(
        session,
        admin_id,
        "mission.update",
        "mission",
        mission_id,
        {"changes": _jsonable(fields), "version": row["version"] + 1},
    )
    effects.of(session).touch_content()
    return get_mission(session, mission_id)


def get_mission(session: Session, mission_id: int) -> dict[str, Any]:
    return mission_def_out(_one(session, _MISSION_SELECT, mission_id, "mission"))


def list_missions(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = _many(session, _MISSION_SELECT, "d.period, d.sort_order, d.id", active, limit, offset)
    return {"items": [mission_def_out(r) for r in rows]}


# ---------------------------------------------------------------------------- achievements


def insert_achievement(session: Session, fields: Mapping[str, Any]) -> int | None:
    """Insert an achievement; None when its ``code`` is taken."""
    cols = [k for k in ACHIEVEMENT_COLUMNS if k in fields]
    stmt = text(
        f"INSERT INTO achievements ({', '.join(cols)}) VALUES"
        f" ({', '.join(':' + c for c in cols)}) ON CONFLICT (code) DO NOTHING RETURNING id"
    ).bindparams(*(bindparam(c, type_=JSONB) for c in cols if c in JSON_COLUMNS))
    new_id = session.execute(stmt, {c: fields[c] for c in cols}).scalar()
    return None if new_id is None else int(new_id)


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
        _jsonable(fields),
    )
    effects.of(session).touch_content()
    return get_achievement(session, achievement_id)


def update_achievement(
    session: Session, *, admin_id: int, achievement_id: int, fields: Mapping[str, Any]
) -> dict[str, Any]:
    row = _lock(session, "achievements", achievement_id, "achievement")
    _check_in_use(session, row, fields, ACHIEVEMENT_LOCKED, "user_achievements", "achievement_id")
    _update(session, "achievements", achievement_id, fields, versioned=False)
    audit.record(
        session,
        admin_id,
        "achievement.update",
        "achievement",
        achievement_id,
        {"changes": _jsonable(fields)},
    )
    effects.of(session).touch_content()
    return get_achievement(session, achievement_id)


def get_achievement(session: Session, achievement_id: int) -> dict[str, Any]:
    return achievement_def_out(_one(session, _ACHIEVEMENT_SELECT, achievement_id, "achievement"))


def list_achievements(
    session: Session, *, active: bool | None, limit: int, offset: int
) -> dict[str, Any]:
    rows = _many(session, _ACHIEVEMENT_SELECT, "d.sort_order, d.id", active, limit, offset)
    return {"items": [achievement_def_out(r) for r in rows]}
