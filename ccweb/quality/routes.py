"""``GET /api/admin/data-quality``: the latest scheduled data-quality report, or a run
made now when there is none (the worker's job is not running, or its report expired)
or the operator asks for one (``?fresh=1``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import Field

from ccweb.auth.guard import auth_required
from ccweb.config import get_settings
from ccweb.http.validation import QuerySchema, doc, validate
from ccweb.quality import jobs
from ccweb.quality.checks import DqConfig, Sweep

bp = Blueprint("quality_admin", __name__, url_prefix="/api/admin")

# this process's position in the rotating balance sweep (fresh runs only)
_sweep = Sweep()


class DataQualityQuery(QuerySchema):
    fresh: bool = Field(default=False, description="run the checks now instead of reading")


@bp.get("/data-quality")
@doc(
    "Data-quality report {generated_at, checks:{name:{count, samples}}, ok}: the latest"
    " scheduled run, or one made now (none stored, or fresh=1)",
    tags=("admin",),
    errors=(403,),
)
@auth_required(admin=True)
@validate(query=DataQualityQuery)
def data_quality(query: DataQualityQuery) -> Any:
    settings = get_settings()
    report = None if query.fresh else jobs.latest(settings)
    if report is None:
        report = jobs.run_once(settings, DqConfig.from_env(), _sweep).to_dict()
    return report
