"""RFM segments for operators (admin only): the label counts and cut-offs, one player's
row, and a batch on request.

``POST /api/admin/segments/batch`` asks the worker to run the batch (202): its next poll
(``CC_SEGMENT_POLL_S``) runs it — the web process's PostgreSQL round trips are bounded
for player requests and a batch over the whole population takes longer (see
:mod:`ccweb.segments.jobs`). The request is audited; ``GET /api/admin/segments`` shows
it pending until the batch ran, then the new ``last_batch_at``.

These routes live in :mod:`ccweb.admin`, not :mod:`ccweb.segments`: flags and auth read
segments (targeting; ``ccweb.auth`` evaluates flags at signup), so ``ccweb.segments``
must not import ``ccweb.auth`` or ``ccweb.admin`` (import-linter: no cycles between
sibling packages) — the same reason the flag admin routes live here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from ccweb.admin import audit
from ccweb.auth.guard import auth_required
from ccweb.config import get_settings
from ccweb.db import autocommit, unit_of_work
from ccweb.errors import NotFound
from ccweb.events import iso
from ccweb.http.validation import doc
from ccweb.segments import jobs, store

bp = Blueprint("admin_segments", __name__)


@bp.get("/api/admin/segments")
@doc(
    "RFM segments: players per label, the cut-offs of the last batch, when it ran, rows"
    " not rewritten for 24 h, and a pending batch request",
    tags=("admin",),
    errors=(401, 403),
)
@auth_required(admin=True)
def overview() -> Any:
    with autocommit() as conn:
        labels = store.label_counts(conn)
        th = store.thresholds(conn)
        stale = store.stale_users(conn)
    last = th.pop("computed_at") if th else None
    return {
        "labels": labels,
        "thresholds": th,
        "last_batch_at": iso(last),
        "stale_users": stale,
        "batch_requested": jobs.pending_request(get_settings()),
    }


@bp.get("/api/admin/segments/users/<id:user_id>")
@doc(
    "One player's RFM row (404 when they have no segment)", tags=("admin",), errors=(401, 403, 404)
)
@auth_required(admin=True)
def user_segment(user_id: int) -> Any:
    with autocommit() as conn:
        row = store.segment_of(conn, user_id)
    if row is None:
        raise NotFound("no segment for this player", details={"user_id": user_id})
    return {
        **row,
        "rfm_total": float(row["rfm_total"]),
        "last_purchase_at": iso(row["last_purchase_at"]),
        "updated_at": iso(row["updated_at"]),
    }


@bp.post("/api/admin/segments/batch")
@doc(
    "Ask the worker to run the RFM batch now (at its next poll; audited)",
    status=202,
    tags=("admin",),
    errors=(401, 403),
)
@auth_required(admin=True)
def request_batch() -> Any:
    with unit_of_work() as s:  # a Redis failure rolls the audit row back (503, nothing asked)
        req = jobs.request_batch(get_settings(), g.user_id)
        audit.record(s, g.user_id, "segments.batch", "segments", None, req)
    return {"requested": req}, 202
