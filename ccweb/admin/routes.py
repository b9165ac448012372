"""Admin API (``/api/admin/*``): every route requires ``is_admin``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.admin import audit, service
from ccweb.admin.schemas import (
    AuditQuery,
    GoldAdjustIn,
    InviteCodeIn,
    InviteCodePatch,
    InviteCodeQuery,
    UserSearchQuery,
)
from ccweb.auth.guard import auth_required
from ccweb.db import unit_of_work
from ccweb.events import iso
from ccweb.http.validation import doc, validate
from ccweb.idempotency import service as idempotency
from ccweb.idempotency.service import idempotent, request_key

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.get("/users")
@doc("Search accounts by site_id or nickname", errors=(403,))
@auth_required(admin=True)
@validate(query=UserSearchQuery)
def users(query: UserSearchQuery) -> Any:
    with unit_of_work() as s:
        return service.search_users(s, query.q, query.limit, query.offset)


@bp.get("/users/<id:user_id>")
@doc("Account detail with ledger sum and recent ledger rows", errors=(403, 404))
@auth_required(admin=True)
def user_detail(user_id: int) -> Any:
    with unit_of_work() as s:
        return service.user_detail(s, user_id)


@bp.post("/users/<id:user_id>/gold")
@doc(
    "Adjust a player's gold through the wallet ledger (audited; X-Idempotency-Key)",
    errors=(403, 404, 409),
)
@auth_required(admin=True)
@idempotent
@validate(body=GoldAdjustIn)
def adjust_gold(user_id: int, body: GoldAdjustIn) -> Any:
    key = request_key()
    return idempotency.transaction(
        lambda s: service.adjust_gold(
            s,
            admin_id=g.user_id,
            user_id=user_id,
            delta=body.delta,
            reason=body.reason,
            request_key=key,
        )
    )


@bp.get("/audit")
@doc("Audit log of admin writes, newest first", errors=(403,))
@auth_required(admin=True)
@validate(query=AuditQuery)
def audit_log(query: AuditQuery) -> Any:
    with unit_of_work() as s:
        rows = audit.list_entries(s, query.limit, query.before_id, query.action)
    return {"items": [{**r, "created_at": iso(r["created_at"])} for r in rows]}


@bp.post("/invite-codes")
@doc("Create an invite code", status=201, errors=(403, 409))
@auth_required(admin=True)
@validate(body=InviteCodeIn)
def create_invite_code(body: InviteCodeIn) -> Any:
    with unit_of_work() as s:
        return service.create_invite_code(
            s, admin_id=g.user_id, code=body.code, max_uses=body.max_uses
        ), 201


@bp.get("/invite-codes")
@doc("Invite codes with their uses, newest first", errors=(403,))
@auth_required(admin=True)
@validate(query=InviteCodeQuery)
def list_invite_codes(query: InviteCodeQuery) -> Any:
    with unit_of_work() as s:
        return service.list_invite_codes(
            s, active=query.active, limit=query.limit, offset=query.offset
        )


@bp.patch("/invite-codes/<id:code_id>")
@doc("Activate/deactivate an invite code or change its max_uses (audited)", errors=(403, 404))
@auth_required(admin=True)
@validate(body=InviteCodePatch)
def update_invite_code(code_id: int, body: InviteCodePatch) -> Any:
    with unit_of_work() as s:
        return service.update_invite_code(
            s, admin_id=g.user_id, code_id=code_id, fields=body.changes()
        )
