"""Operators' feature flag API (``/api/admin/flags``). The player's view, ``GET /api/flags``,
is in :mod:`ccweb.ops.routes`. (Not in ``ccweb.flags``: auth reads flags, and these routes
need auth.)"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, g

from ccweb.admin import audit
from ccweb.auth.guard import auth_required
from ccweb.db import unit_of_work
from ccweb.errors import NotFound, ValidationFailed
from ccweb.events import iso
from ccweb.flags import registry, service
from ccweb.flags.rules import Flag
from ccweb.flags.schemas import KEY_PATTERN, FlagIn
from ccweb.http.validation import doc, validate

bp = Blueprint("admin_flags", __name__)

_KEY = re.compile(KEY_PATTERN)


def flag_out(flag: Flag) -> dict[str, Any]:
    return {
        "key": flag.key,
        "value": flag.value,
        "value_type": flag.value_type,
        "off_value": flag.off_value,
        "client_visible": flag.client_visible,
        "description": flag.description,
        "rollout_percent": flag.rollout_percent,
        "target_tiers": list(flag.target_tiers) or None,
        "target_segments": list(flag.target_segments) or None,
        "version": flag.version,
        "updated_at": iso(flag.updated_at),
        "known": flag.key in registry.KNOWN,
    }


def _default_out(key: str) -> dict[str, Any]:
    known = registry.KNOWN[key]
    return {
        "key": key,
        "value": known.default(),
        "value_type": known.value_type,
        "off_value": None,
        "client_visible": known.client_visible,
        "description": known.description,
        "rollout_percent": 100,
        "target_tiers": None,
        "target_segments": None,
        "version": 0,
        "updated_at": None,
        "known": True,
    }


@bp.get("/api/admin/flags")
@doc(
    "All feature flags (stored ones, and known ones at their default with version 0)",
    tags=("admin",),
    errors=(403,),
)
@auth_required(admin=True)
def list_flags() -> Any:
    stored = service.flags()
    out = {k: _default_out(k) for k in registry.KNOWN if k not in stored}
    out.update({k: flag_out(f) for k, f in stored.items()})
    return dict(sorted(out.items()))


@bp.get("/api/admin/flags/<string:key>")
@doc("One feature flag", tags=("admin",), errors=(403, 404))
@auth_required(admin=True)
def get_flag(key: str) -> Any:
    flag = service.flags().get(key)
    if flag is not None:
        return flag_out(flag)
    if key in registry.KNOWN:
        return _default_out(key)
    raise NotFound("no such flag", details={"key": key})


@bp.put("/api/admin/flags/<string:key>")
@doc(
    "Create or replace a feature flag: typed and validated, audited, visible to every"
    " process within 1 s",
    tags=("admin",),
    errors=(403, 409),
)
@auth_required(admin=True)
@validate(body=FlagIn)
def put_flag(key: str, body: FlagIn) -> Any:
    if not _KEY.fullmatch(key):
        raise ValidationFailed("bad flag key", details={"field": "key", "pattern": KEY_PATTERN})
    fields = body.model_dump(exclude_unset=True)
    with unit_of_work() as s:
        new, old = service.put(s, key, fields)
        audit.record(
            s,
            g.user_id,
            "flag.put",
            "flag",
            key,
            {"before": flag_out(old) if old else None, "after": flag_out(new)},
        )
    return flag_out(new)
