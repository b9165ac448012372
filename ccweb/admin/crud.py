"""Row helpers shared by the operator CRUD services (LiveOps content, shop products).

Each content table is written the same way: an INSERT of the validated fields, a partial
UPDATE (bumping ``version`` and ``updated_at`` where the table is versioned), a
``FOR UPDATE`` read before an update so the checks and the write see the same row, an
optimistic version check (409 ``VERSION_CONFLICT``), and reads of one row or a page with
per-row counts. Table and column names come from the calling service's constants, never
from a request; values are always bound. ``json_columns`` names the JSONB columns (a
Python list or dict must be bound as JSONB, not as a PostgreSQL array).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ccweb.errors import Conflict, NotFound
from ccweb.events import iso

ACTIVE_FILTER = " WHERE (CAST(:active AS boolean) IS NULL OR d.is_active = :active)"


def jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Audit payloads are JSONB: datetimes become ISO strings."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}


def _insert(
    session: Session,
    table: str,
    fields: Mapping[str, Any],
    json_columns: Collection[str],
    conflict: str,
) -> int | None:
    cols = list(fields)
    stmt = text(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
        f"{conflict} RETURNING id"
    ).bindparams(*(bindparam(c, type_=JSONB) for c in cols if c in json_columns))
    new_id = session.execute(stmt, dict(fields)).scalar()
    return None if new_id is None else int(new_id)


def insert_row(
    session: Session, table: str, fields: Mapping[str, Any], json_columns: Collection[str] = ()
) -> int:
    """Insert a row and return its id."""
    new_id = _insert(session, table, fields, json_columns, "")
    assert new_id is not None  # an INSERT without ON CONFLICT returns its row or raises
    return new_id


def insert_unique(
    session: Session,
    table: str,
    fields: Mapping[str, Any],
    json_columns: Collection[str] = (),
    *,
    unique: str,
) -> int | None:
    """Insert a row unless its ``unique`` column's value is taken (then None, so the
    caller answers 409 ``DUPLICATE`` instead of failing the transaction)."""
    return _insert(session, table, fields, json_columns, f" ON CONFLICT ({unique}) DO NOTHING")


def update_row(
    session: Session,
    table: str,
    row_id: int,
    fields: Mapping[str, Any],
    json_columns: Collection[str] = (),
    *,
    versioned: bool,
) -> None:
    sets = [f"{c} = :{c}" for c in fields]
    if versioned:
        sets += ["version = version + 1", "updated_at = now()"]
    stmt = text(f"UPDATE {table} SET {', '.join(sets)} WHERE id = :id").bindparams(
        *(bindparam(c, type_=JSONB) for c in fields if c in json_columns)
    )
    session.execute(stmt, {**fields, "id": row_id})


def lock_row(session: Session, table: str, row_id: int, what: str) -> dict[str, Any]:
    """The row, locked ``FOR UPDATE`` until the transaction ends (404 when absent)."""
    row = (
        session.execute(text(f"SELECT * FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"{what} not found", details={"id": row_id})
    return dict(row)


def check_version(row: Mapping[str, Any], expected: int | None) -> None:
    if expected is not None and expected != row["version"]:
        raise Conflict(
            "the definition changed since it was read",
            code="VERSION_CONFLICT",
            details={"expected_version": expected, "current_version": row["version"]},
        )


def one_row(session: Session, select: str, row_id: int, what: str) -> dict[str, Any]:
    """One row of ``select`` (which names the table ``d``), 404 when absent."""
    row = session.execute(text(select + " WHERE d.id = :id"), {"id": row_id}).mappings().first()
    if row is None:
        raise NotFound(f"{what} not found", details={"id": row_id})
    return dict(row)


def many_rows(
    session: Session, select: str, order: str, active: bool | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """A page of ``select`` (table ``d``), optionally only active or inactive rows."""
    return [
        dict(r)
        for r in session.execute(
            text(select + ACTIVE_FILTER + f" ORDER BY {order} LIMIT :limit OFFSET :offset"),
            {"active": active, "limit": limit, "offset": offset},
        ).mappings()
    ]
