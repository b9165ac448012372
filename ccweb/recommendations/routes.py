"""``GET /api/recommendations``: offers for the caller's RFM segment, counted and timed.

Not cached: one statement, and a sold-out or just-bought package disappears at once
(the dashboard's cached copy of the same offers re-renders on the player's changes).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g

from ccweb import clock
from ccweb.auth.guard import auth_required
from ccweb.db import autocommit
from ccweb.http.validation import doc
from ccweb.recommendations import metrics, service
from ccweb.recommendations.schemas import RecommendationsOut

bp = Blueprint("recommendations", __name__)


@bp.get("/api/recommendations")
@doc(
    "Offers for the caller's RFM segment (AtRisk → return package, Whale → limited package,"
    " HighEngaged → mission extension, Medium → value package, Low → an event to join);"
    " result=fallback: no segment or nothing to offer it, cold-start offers instead",
    response=RecommendationsOut,
)
@auth_required
def get_recommendations() -> Any:
    started = time.perf_counter()
    result = "error"  # unless an answer is returned
    try:
        with autocommit() as conn:
            view = service.recommendations(conn, g.user_id, clock.utcnow())
        result = view["result"]
        return view
    finally:
        metrics.observe(result, time.perf_counter() - started)
