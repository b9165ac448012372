"""Request validation with pydantic, and the metadata the OpenAPI document is built from.

``@validate(body=Model, query=Model)`` parses the JSON body / query string with the
same pydantic models the OpenAPI document shows, so docs and behaviour cannot drift.
Failures become 400 ``VALIDATION_ERROR`` with per-field details; the view never runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from ccweb.errors import ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])

MAX_ID = 2**63 - 1  # PostgreSQL bigint: ids beyond it are 400s, not database errors


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(raw: bytes) -> None:
    """PostgreSQL cannot store U+0000 in text or JSONB; refuse it up front (400) instead
    of failing in the database (500). The byte scan is cheap; only bodies that contain
    the escape at all are parsed to look closer."""
    if b"\\u0000" in raw and _has_nul(json.loads(raw)):
        raise ValidationFailed(
            "NUL characters (\\u0000) are not allowed",
            details={
                "fields": [{"field": "body", "message": "contains U+0000", "type": "nul_character"}]
            },
        )


class Schema(BaseModel):
    """Base for request bodies: strict types (``"5"`` is not an integer bet), unknown
    keys ignored (older/newer clients keep working)."""

    model_config = ConfigDict(strict=True, extra="ignore")


class QuerySchema(BaseModel):
    """Query strings are text, so these models coerce ("10" → 10) but still bound-check."""

    model_config = ConfigDict(extra="ignore")


def _field_errors(exc: PydanticValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        out.append(
            {
                "field": ".".join(str(p) for p in err["loc"]) or "body",
                "message": err["msg"],
                "type": err["type"],
            }
        )
    return out


def parse_body(model: type[BaseModel]) -> Any:
    raw = request.get_data(cache=True)
    if raw.strip() == b"":
        raw = b"{}"
    if request.mimetype not in ("application/json", "") and not request.mimetype.endswith("+json"):
        raise ValidationFailed(
            "request body must be JSON", details={"content_type": request.mimetype}
        )
    try:
        parsed = model.model_validate_json(raw)
    except PydanticValidationError as exc:
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            raise ValidationFailed("malformed JSON body", details={"fields": errors}) from None
        raise ValidationFailed("invalid request body", details={"fields": errors}) from None
    reject_nul(raw)
    return parsed


def parse_query(model: type[BaseModel]) -> Any:
    if any("\x00" in v for v in request.args.values()):
        raise ValidationFailed("NUL characters are not allowed in query parameters")
    try:
        return model.model_validate(request.args.to_dict())
    except PydanticValidationError as exc:
        raise ValidationFailed(
            "invalid query parameters", details={"fields": _field_errors(exc)}
        ) from None


def _meta(fn: Callable[..., Any]) -> dict[str, Any]:
    meta: dict[str, Any] | None = getattr(fn, "__openapi__", None)
    if meta is None:
        meta = {}
        fn.__openapi__ = meta  # type: ignore[attr-defined]
    return meta


def validate(
    body: type[BaseModel] | None = None, query: type[BaseModel] | None = None
) -> Callable[[F], F]:
    """Parse and validate input; the view receives ``body=`` and/or ``query=``."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return fn(*args, **kwargs)

        meta = dict(_meta(fn))
        if body is not None:
            meta["body"] = body
        if query is not None:
            meta["query"] = query
        wrapper.__openapi__ = meta  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


def doc(
    summary: str,
    *,
    response: type[BaseModel] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    tags: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Describe an endpoint for the OpenAPI document (no runtime effect)."""

    def deco(fn: F) -> F:
        meta = _meta(fn)
        meta.update(summary=summary, status=status, errors=errors, tags=tags)
        if response is not None:
            meta["response"] = response
        return fn

    return deco
