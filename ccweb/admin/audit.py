"""Admin audit trail: written in the same transaction as the admin's change.

A target is an integer id (``target_id``) or, for things keyed by text such as feature
flags, a key (``target_key``); see :mod:`ccweb.admin.models`."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

_INSERT = text(
    """
    INSERT INTO admin_audit
        (admin_id, action, target_type, target_id, target_key, payload, ip, request_id)
    VALUES (:admin_id, :action, :target_type, :target_id, :target_key, :payload, :ip, :rid)
    """
).bindparams(bindparam("payload", type_=JSONB))


def record(
    session: Session,
    admin_id: int | None,  # None: the system acted (e.g. a payment provider's void)
    action: str,
    target_type: str,
    target: int | str | None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record one admin write; ``target`` is the row's id, or the key of a thing keyed
    by text (a flag)."""
    ip = rid = None
    if has_request_context():
        ip = request.headers.get("X-Forwarded-For", request.remote_addr)
        rid = g.get("request_id")
    session.execute(
        _INSERT,
        {
            "admin_id": admin_id,
            "action": action,
            "target_type": target_type,
            "target_id": target if isinstance(target, int) else None,
            "target_key": target if isinstance(target, str) else None,
            "payload": payload,
            "ip": ip,
            "rid": rid,
        },
    )


def list_entries(
    session: Session, limit: int, before_id: int | None, action: str | None
) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            """
            SELECT id, admin_id, action, target_type, target_id, target_key, payload, ip,
                   request_id, created_at
            FROM admin_audit
            WHERE (CAST(:before AS bigint) IS NULL OR id < :before)
              AND (CAST(:action AS text) IS NULL OR action = :action)
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"before": before_id, "action": action, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]
