"""Client-reported player actions: stored for recent-activity views and emitted as
``user.action`` events (the realtime hub will push them as ``user_action``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ccweb import effects, events, pg
from ccweb.events import iso, parse_ts

_INSERT = text(
    """
    INSERT INTO user_actions (user_id, action_type, context)
    SELECT :uid, a.action_type, a.context
    FROM jsonb_to_recordset(:rows) AS a(action_type text, context jsonb)
    RETURNING id, action_type, context, created_at
    """
).bindparams(bindparam("rows", type_=JSONB))


def _out(r: Any) -> dict[str, Any]:
    return {
        "id": r["id"],
        "action_type": r["action_type"],
        "context": r["context"],
        "created_at": iso(r["created_at"]),
    }


def record(session: Session, user_id: int, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert one or many actions in one statement, in order; one event per action."""
    rows = session.execute(_INSERT, {"uid": user_id, "rows": actions}).mappings().all()
    out = [_out(r) for r in sorted(rows, key=lambda r: r["id"])]
    for a in out:
        effects.emit(
            session,
            events.USER_ACTION,
            user_id,
            {"action_id": a["id"], "action_type": a["action_type"], "context": a["context"]},
        )
    effects.of(session).touch(user_id)
    return out


# Player :uid's last :actions_limit actions, newest first, as one JSON column (for
# :func:`recent` and statements that read several sections at once: the profile).
RECENT_SQL = """(SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]')
    FROM (SELECT id, action_type, context, created_at FROM user_actions WHERE user_id = :uid
          ORDER BY id DESC LIMIT :actions_limit) x) AS action_rows"""


def recent(conn: Connection | Session, user_id: int, limit: int) -> list[dict[str, Any]]:
    row = pg.execute(conn, f"SELECT {RECENT_SQL}", {"uid": user_id, "actions_limit": limit})[0]
    return recent_from_row(row)


def recent_from_row(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON carries ``created_at`` as PostgreSQL's text; :func:`_out` wants the instant."""
    return [_out(r | {"created_at": parse_ts(r["created_at"])}) for r in row["action_rows"]]
