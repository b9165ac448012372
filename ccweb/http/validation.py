"""Request validation with pydantic, and the metadata the OpenAPI document is built from.

``@validate(body=Model, query=Model)`` parses the JSON body / query string with the
same pydantic models the OpenAPI document shows, so docs and behaviour cannot drift.
Failures become 400 ``VALIDATION_ERROR`` with per-field details; the view never runs.

One rule for request bodies, on every route (:func:`require_json_body`, run before any
view): a request that carries a body must declare it ``Content-Type: application/json``
(or ``application/<x>+json``; parameters such as ``charset`` allowed), else 415
``UNSUPPORTED_MEDIA_TYPE`` and nothing runs. A request without a body needs no
Content-Type: the bodyless POSTs (claims, participate, logout, session end) stay as they
are, and a route whose body schema has no required field (fairness rotate) takes an
empty body as ``{}``. Before, a JSON body with no Content-Type was applied while a form
body was refused, and routes without a body schema never looked at the header at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from ccweb.errors import DomainError, ValidationFailed

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


class UnsupportedMediaType(DomainError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    message = "a request body must be JSON sent with Content-Type: application/json"


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def require_json_body() -> None:
    """The body rule (module docstring). Cheap for the usual request: a GET or a bodyless
    POST is two environ lookups."""
    environ = request.environ
    if environ.get("CONTENT_LENGTH", "") in ("", "0") and "HTTP_TRANSFER_ENCODING" not in environ:
        return
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if not _is_json(mimetype):
        raise UnsupportedMediaType(details={"content_type": mimetype or None})


def init_body_rule(app: Flask) -> None:
    """Apply :func:`require_json_body` to every request (register after the hooks that
    start request metrics and logging, so a refused request is measured and logged)."""
    app.before_request(require_json_body)


def parse_body(model: type[BaseModel]) -> Any:
    """The JSON body (its Content-Type was checked by :func:`require_json_body`); an
    empty body reads as ``{}``."""
    raw = request.get_data(cache=True)
    if raw.strip() == b"":
        raw = b"{}"
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
