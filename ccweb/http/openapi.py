"""OpenAPI 3 document built from the routes and the pydantic models they validate with,
plus a Swagger UI page served from the ``swagger-ui-bundle`` package (no CDN)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, send_from_directory
from pydantic import BaseModel
from swagger_ui_bundle import swagger_ui_path
from werkzeug.routing import IntegerConverter

bp = Blueprint("openapi", __name__)

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_ERROR"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
_STATUS_TEXT = {
    400: "Validation error",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "State conflict",
    415: "Body not declared Content-Type: application/json",
    429: "Too many requests",
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _path_schema(rule: Any, arg: str) -> dict[str, Any]:
    converter = rule._converters.get(arg)
    if isinstance(converter, IntegerConverter):
        return {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    return {"type": "string"}


def build_document(app: Flask) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "__openapi__", None)
        if meta is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": meta.get("summary", rule.endpoint),
                "tags": list(meta.get("tags") or [rule.endpoint.split(".")[0]]),
                "responses": {},
            }
            params = [
                {"name": arg, "in": "path", "required": True, "schema": _path_schema(rule, arg)}
                for arg in rule.arguments
            ]
            if "query" in meta:
                params += _query_params(meta["query"])
            if params:
                op["parameters"] = params
            if "body" in meta:
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _schema_ref(meta["body"], components)}
                    },
                }
            ok: dict[str, Any] = {"description": "OK"}
            if "response" in meta:
                ok["content"] = {
                    "application/json": {"schema": _schema_ref(meta["response"], components)}
                }
            op["responses"][str(meta.get("status", 200))] = ok
            errors = set(meta.get("errors", ()))
            if "body" in meta or "query" in meta:
                errors.add(400)
            if "body" in meta:
                errors.add(415)  # ccweb.http.validation.require_json_body
            if meta.get("auth"):
                errors.add(401)
                op["security"] = [{"bearer": []}]
            for status in sorted(errors):
                op["responses"][str(status)] = {
                    "description": _STATUS_TEXT.get(status, "Error"),
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Casino-Club API", "version": "1.0.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


@bp.get("/api/openapi.json")
def openapi_json() -> Any:
    doc = current_app.extensions.get("cc_openapi")
    if doc is None:
        doc = current_app.extensions["cc_openapi"] = build_document(current_app)
    return jsonify(doc)


_DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Casino-Club API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


@bp.get("/api/docs")
def docs_page() -> Any:
    return _DOCS_HTML, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/api/docs/static/<path:filename>")
def docs_static(filename: str) -> Any:
    return send_from_directory(swagger_ui_path, filename)
