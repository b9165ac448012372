"""HTTP basics: the one error shape, OpenAPI + docs, health/ready/metrics, request ids."""

from __future__ import annotations

import json

import pytest

from ccweb import create_app
from tests.factories import auth_headers

ERROR_KEYS = {"code", "message", "details"}


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == code
    return body["error"]


def test_unknown_route_and_wrong_method_use_the_error_shape(client):
    assert_error(client.get("/api/nope"), 404, "NOT_FOUND")
    err = client.delete("/api/auth/login")
    assert_error(err, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in err.headers["Allow"]


def test_malformed_json_bodies_are_400(client):
    e = assert_error(
        client.post("/api/auth/login", data="{bad", content_type="application/json"),
        400,
        "VALIDATION_ERROR",
    )
    assert e["message"] == "malformed JSON body"
    assert_error(client.post("/api/auth/login", json=[1, 2]), 400, "VALIDATION_ERROR")
    e = assert_error(client.post("/api/auth/login", json={"site_id": "x"}), 400, "VALIDATION_ERROR")
    assert e["details"]["fields"][0]["field"] == "password"


def test_a_body_must_be_declared_json_on_every_route(client):
    """One rule for request bodies: a body needs ``Content-Type: application/json`` (or
    ``+json``, charset allowed), else 415 with the error shape and nothing runs — the same
    on routes that validate a body (login, spin, admin adjust) and on routes that take
    none (participate); a request without a body needs no Content-Type."""
    from tests.factories import balance, create_event, create_user

    player = create_user(gold=500)
    login = json.dumps({"site_id": player["site_id"], "password": player["password"]})
    for content_type in (None, "application/x-www-form-urlencoded", "text/plain"):
        e = assert_error(
            client.post("/api/auth/login", data=login, content_type=content_type),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        assert e["details"] == {"content_type": content_type}
    for content_type in ("application/json; charset=utf-8", "application/vnd.cc+json"):
        r = client.post("/api/auth/login", data=login, content_type=content_type)
        assert r.status_code == 200, r.get_json()
    headers = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    admin = auth_headers(client, create_user(is_admin=True), admin=True)

    spin = client.post("/api/games/slot/spin", data='{"bet": 10}', headers=headers)
    assert_error(spin, 415, "UNSUPPORTED_MEDIA_TYPE")
    adjust = client.post(
        f"/api/admin/users/{player['id']}/gold",
        data="delta=5&reason=form",
        content_type="application/x-www-form-urlencoded",
        headers=admin,
    )
    assert_error(adjust, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert balance(player["id"]) == 500  # neither the spin nor the adjustment ran
    eid = create_event([{"type": "plays", "target": 1}])
    join = client.post(f"/api/events/{eid}/participate", data="x=1", headers=headers)
    assert_error(join, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert client.get("/api/events", headers=headers).get_json()[0]["participation"] is None

    # bodyless requests need no Content-Type; an optional-only body may be empty
    assert client.post(f"/api/events/{eid}/participate", headers=headers).status_code == 200
    assert client.post("/api/games/fairness/rotate", headers=headers).status_code == 200
    spun = client.post("/api/games/slot/spin", json={"bet": 10}, headers=headers)
    assert spun.status_code == 200


def test_query_validation(client):
    from tests.factories import auth_headers, create_user

    headers = auth_headers(client, create_user())
    assert_error(
        client.get("/api/rewards/history?limit=0", headers=headers), 400, "VALIDATION_ERROR"
    )
    assert_error(
        client.get("/api/rewards/history?limit=abc", headers=headers), 400, "VALIDATION_ERROR"
    )
    assert client.get("/api/rewards/history?limit=5", headers=headers).status_code == 200


@pytest.fixture(scope="module")
def boom_app(settings):
    app = create_app(settings)

    @app.get("/test/boom")
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    return app


def test_unexpected_errors_are_500_without_a_stack_trace(boom_app):
    resp = boom_app.test_client().get("/test/boom")
    err = assert_error(resp, 500, "INTERNAL")
    assert "secret" not in resp.get_data(as_text=True) and "Traceback" not in err["message"]


def test_too_large_body_is_413(client):
    resp = client.post("/api/auth/login", data="x" * (2 << 20), content_type="application/json")
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_openapi_document_comes_from_the_validation_schemas(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    signup = doc["paths"]["/api/auth/signup"]["post"]
    ref = signup["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["properties"]["site_id"]["pattern"] == "^[A-Za-z0-9_]{3,32}$"
    assert schema["properties"]["password"]["minLength"] == 8
    assert {"201", "400", "409"} <= set(signup["responses"])
    me = doc["paths"]["/api/auth/me"]["get"]
    assert me["security"] == [{"bearer": []}] and "401" in me["responses"]
    gold = doc["paths"]["/api/admin/users/{user_id}/gold"]["post"]
    assert gold["parameters"][0] == {
        "name": "user_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }
    history = doc["paths"]["/api/rewards/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"limit", "before_id"}


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and b"/api/openapi.json" in page.data
    asset = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    asset.close()


def test_health_ready_metrics(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready").get_json()
    assert ready["status"] == "ready"
    assert ready["checks"]["postgres"] == "ok" and ready["checks"]["redis"] == "ok"
    assert ready["checks"]["kafka"] == "disabled"  # the suite's base settings: sinks off
    assert ready["checks"]["clickhouse"] == "disabled"
    client.get("/health")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "flask_http_request_duration_seconds" in metrics
    assert "cc_sql_seconds" in metrics


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/health", headers={"X-Request-ID": "abc123"})
    assert given.headers["X-Request-ID"] == "abc123"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32


def _sample(metrics: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in /metrics")


def test_request_metrics_count_by_method_status_and_endpoint(client):
    """Each request lands in the duration histogram under its endpoint and in the request
    counter under method and status (names as prometheus-flask-exporter had them)."""
    before = client.get("/metrics").get_data(as_text=True)
    try:
        n404 = _sample(before, "flask_http_request_total", method="GET", status="404")
    except AssertionError:
        n404 = 0.0
    try:
        n_ready = _sample(
            before,
            "flask_http_request_duration_seconds_count",
            method="GET",
            status="200",
            endpoint="ops.ready",
        )
    except AssertionError:
        n_ready = 0.0
    client.get("/ready")
    client.get("/ready")
    client.get("/no/such/path")
    after = client.get("/metrics").get_data(as_text=True)
    assert (
        _sample(
            after,
            "flask_http_request_duration_seconds_count",
            method="GET",
            status="200",
            endpoint="ops.ready",
        )
        == n_ready + 2
    )
    assert _sample(after, "flask_http_request_total", method="GET", status="404") == n404 + 1
