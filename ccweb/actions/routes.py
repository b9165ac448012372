"""Actions API: ``POST /api/actions``, ``POST /api/actions/bulk``, ``GET /api/actions/recent``."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g
from pydantic import Field, field_validator

from ccweb.actions import service
from ccweb.auth.guard import auth_required
from ccweb.db import autocommit, unit_of_work
from ccweb.http.validation import QuerySchema, Schema, doc, validate

bp = Blueprint("actions", __name__, url_prefix="/api/actions")
MAX_CONTEXT_BYTES = 4096


class ActionIn(Schema):
    action_type: str = Field(pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("context")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v)) > MAX_CONTEXT_BYTES:
            raise ValueError(f"context larger than {MAX_CONTEXT_BYTES} bytes")
        return v


class BulkIn(Schema):
    actions: list[ActionIn] = Field(min_length=1, max_length=100)


class RecentQuery(QuerySchema):
    limit: int = Field(default=20, ge=1, le=100)


@bp.post("")
@doc("Record one player action", status=201)
@auth_required
@validate(body=ActionIn)
def create(body: ActionIn) -> Any:
    with unit_of_work() as s:
        return service.record(s, g.user_id, [body.model_dump()])[0], 201


@bp.post("/bulk")
@doc("Record up to 100 actions at once (one transaction)", status=201)
@auth_required
@validate(body=BulkIn)
def create_bulk(body: BulkIn) -> Any:
    with unit_of_work() as s:
        items = service.record(s, g.user_id, [a.model_dump() for a in body.actions])
    return {"created": len(items), "items": items}, 201


@bp.get("/recent")
@doc("The player's recent actions, newest first")
@auth_required
@validate(query=RecentQuery)
def recent(query: RecentQuery) -> Any:
    with autocommit() as conn:
        return {"items": service.recent(conn, g.user_id, query.limit)}
