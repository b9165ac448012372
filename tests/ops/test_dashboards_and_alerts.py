"""The Grafana dashboards (ops/grafana/dashboards) and the Prometheus alert rules
(ops/alerts) parse, are structurally what Grafana and Prometheus load, and reference only
series the system really exports — checked against a real pre-fork web server's
``/metrics`` (multiprocess mode, after exercising the endpoints so labelled series exist)
and a real worker's metrics port (with both sink groups configured, so their modules are
loaded). ``promtool`` (Debian's ``prometheus`` package) checks the rules, the config and
every dashboard query's syntax, and runs the alert unit tests of ``alerts_test.yml``."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.factories import create_product, create_user
from tests.ops.exposition import exported, value
from tests.ops.promql import selectors
from tests.processes import ROOT, free_port, start_server, start_worker, stop, wait_for

DASHBOARDS = sorted((ROOT / "ops/grafana/dashboards").glob("*.json"))
ALERT_FILES = sorted((ROOT / "ops/alerts").glob("*.yml"))
DATASOURCE = ROOT / "ops/grafana/provisioning/datasources/prometheus.yml"
# on PATH (Debian's `prometheus` package), or unpacked from it into .local/tools without
# installing the service (`apt-get download prometheus`, `dpkg-deb -x … .local/tools`)
PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(ROOT / ".local/tools/usr/bin")
)
NO_PROMTOOL = "promtool not installed (apt-get install prometheus); structural checks still ran"
# series Prometheus writes itself for every target, not exported by any process
SYNTHESISED = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# labelled by what failed, so without a series until it first happens (no query uses it)
FIRST_SEEN_WHEN_IT_HAPPENS = {"flask_http_request_exceptions_total"}
# Grafana's interval variables, as a plain range for promtool
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_queries() -> list[tuple[str, str]]:
    """``(where, expr)`` of every dashboard query."""
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text()))
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in ALERT_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def documented_metrics() -> set[str]:
    """The series docs/METRICS.md says the processes export (its "What is exported")."""
    text = (ROOT / "docs/METRICS.md").read_text()
    section = text.split("## What is exported", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\b(?:cc|flask)_[a-z0-9_]*[a-z0-9]", section))


def every_query() -> list[tuple[str, str]]:
    return dashboard_queries() + [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]


# -- the files themselves ----------------------------------------------------------------


def test_dashboards_parse_and_use_the_provisioned_datasource():
    assert {p.name for p in DASHBOARDS} >= {"service.json", "pipeline.json", "segments.json"}
    uid = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]["uid"]
    seen_uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in seen_uids and board["title"], path.name
        seen_uids.add(board["uid"])
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels(board):
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), (path.name, panel["title"])
            assert all(t["expr"].strip() for t in panel["targets"]), (path.name, panel["title"])


DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def test_alert_rules_are_structurally_valid():
    """What Prometheus requires of a rule file, plus our conventions: every alert has a
    severity Alertmanager can route on and says what to look at."""
    assert ALERT_FILES
    names = set()
    for path in ALERT_FILES:
        doc = yaml.safe_load(path.read_text())
        assert set(doc) == {"groups"}, path.name
        groups = [g["name"] for g in doc["groups"]]
        assert len(groups) == len(set(groups)), f"{path.name}: duplicate group names"
        for group in doc["groups"]:
            assert set(group) <= {"name", "interval", "rules", "limit"}, group["name"]
            assert group["rules"], group["name"]
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
                assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
                assert rule["alert"] not in names, f"duplicate alert {rule['alert']}"
                names.add(rule["alert"])
                assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
                assert DURATION.match(str(rule.get("for", "0s"))), rule["alert"]
                assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
                assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_the_seed_002_thresholds_are_the_alerts():
    """Seed 002 §11: produce failures > 1 % (5 m) warn, outbox_pending > 10k is critical,
    ClickHouse insert p95 > 2000 ms (5 m) warns. ``alerts_test.yml`` (promtool) shows them
    firing on synthetic series; this pins the numbers in the expressions."""
    rules = {r["alert"]: r for r in alert_rules()}
    kafka, outbox, ch = (
        rules["KafkaProduceFailureRate"],
        rules["OutboxPendingHigh"],
        rules["ClickHouseInsertLatencyHigh"],
    )
    assert kafka["expr"].rstrip().endswith("> 0.01") and "[5m]" in kafka["expr"]
    assert (kafka["for"], kafka["labels"]["severity"]) == ("5m", "warning")
    assert outbox["expr"].strip() == "max(cc_outbox_pending) > 10000"
    assert outbox["labels"]["severity"] == "critical"
    assert ch["expr"].rstrip().endswith("> 2000") and "histogram_quantile(0.95" in ch["expr"]
    assert (ch["for"], ch["labels"]["severity"]) == ("5m", "warning")


def test_selectors_read_promql():
    expr = (
        "histogram_quantile(0.95, sum by (le, endpoint) (rate(flask_http_request_duration_"
        'seconds_bucket{endpoint!~"realtime\\\\..*"}[$__rate_interval]))) > 0.25 and on(job)'
        " (sum(rate(a_total[5m])) or vector(0)) - time() + b:c:rate5m offset 1h > 1e3"
    )
    assert selectors(expr) == [
        ("flask_http_request_duration_seconds_bucket", {"endpoint": "realtime\\\\..*"}),
        ("a_total", {}),
        ("b:c:rate5m", {}),
    ]


# -- promtool ----------------------------------------------------------------------------


def promtool(*args: str, cwd: Path = ROOT) -> str:
    assert PROMTOOL
    run = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_rules_and_the_config():
    out = promtool("check", "rules", *(str(p) for p in ALERT_FILES))
    assert f"{len(alert_rules())} rules found" in out
    promtool("check", "config", "ops/prometheus.yml")  # rule_files resolve in the repository


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_parses_every_dashboard_query(tmp_path):
    """Each query, with Grafana's interval variables as plain ranges, as a recording rule:
    promtool parses its PromQL."""
    rules = []
    for i, (_, expr) in enumerate(dashboard_queries()):
        for variable, duration in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, duration)
        assert "$" not in expr, expr  # no dashboard variable promtool cannot know
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"{len(rules)} rules found" in promtool("check", "rules", str(path))


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_the_alerts_fire_at_their_thresholds_and_not_below():
    """``alerts_test.yml``: synthetic series just above and just below each seed 002
    threshold, evaluated by Prometheus's own rule engine."""
    promtool("test", "rules", "alerts_test.yml", cwd=Path(__file__).parent)


# -- against the real processes ----------------------------------------------------------


def call(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One request on a fresh connection (the kernel picks the web process)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw


def login(port: int, user: dict[str, Any]) -> str:
    status, body = call(
        port, "POST", "/api/auth/login", {k: user[k] for k in ("site_id", "password")}
    )
    assert status == 200, body
    return str(body["access_token"])


def play(port: int) -> None:
    """The requests a player and an operator make, so that the labelled series exist."""
    user = create_user(gold=100_000)
    locked = create_user()
    for _ in range(2):
        assert call(port, "POST", "/api/auth/login", {**user, "password": "wrong-pass"})[0] == 401
    for _ in range(6):
        call(port, "POST", "/api/auth/login", {**locked, "password": "wrong-pass"})
    token = login(port, user)
    limited = create_product(category="item", price_gold=10, stock=100)
    conversion = create_product(
        category="conversion", price_gold=0, points_price=100, gold_amount=10
    )
    for path in ("/api/dashboard", "/api/profile", "/api/shop/catalog", "/api/recommendations"):
        assert call(port, "GET", path, token=token)[0] == 200, path
    assert call(port, "POST", "/api/games/slot/spin", {"bet": 100}, token)[0] == 200
    for product in (limited, conversion):
        body = {"product_id": product["id"], "idempotency_key": uuid.uuid4().hex}
        assert call(port, "POST", "/api/shop/purchase", body, token)[0] == 200
    assert call(port, "POST", "/api/shop/webhook/settlement", {"x": 1})[0] == 401  # unsigned
    call(port, "GET", "/ready")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def test_every_series_the_dashboards_and_alerts_use_is_exported(subprocess_env):
    """Names (histograms by their _bucket/_sum/_count series) and the labels they match
    on, against the union of what a web server and a worker export."""
    web, port = start_server(subprocess_env, processes=2)
    metrics_port = free_port()
    worker_env = {
        **subprocess_env,
        "CC_WORKER_METRICS_PORT": str(metrics_port),
        # both sink groups run (their modules and metrics load); nothing listens there
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}/default",
    }
    worker = start_worker(worker_env)
    sse: http.client.HTTPConnection | None = None
    try:
        play(port)
        sse = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sse.request(
            "GET",
            "/api/realtime/stream",
            headers={"Authorization": f"Bearer {login(port, create_user())}"},
        )
        stream = sse.getresponse()
        assert stream.status == 200 and stream.fp.readline()  # the socket is registered
        web_text = scrape(port)

        def worker_holding() -> str | None:
            """The analytics group took the play's events and holds them (its sink is
            down); it must still report them, every 5 s, while it waits."""
            try:
                text = scrape(metrics_port)
            except OSError:
                return None
            held = value(text, "cc_worker_pending", group="analytics")
            activity = value(text, "cc_worker_pending", group="activity")
            return text if held and activity is not None else None

        worker_text = wait_for(worker_holding, timeout=30, what="the analytics group's gauges")
    finally:
        if sse is not None:
            sse.close()
        stop(web)
        stop(worker)
    series = exported(web_text)
    for name, labels in exported(worker_text).items():
        series.setdefault(name, set()).update(labels)

    problems = []
    for where, expr in every_query():
        for name, matchers in selectors(expr):
            if name in SYNTHESISED:
                continue
            if name not in series:
                problems.append(f"{where}: {name} is not exported")
            elif series[name] and not set(matchers) <= series[name]:
                problems.append(f"{where}: {name} has no label {set(matchers) - series[name]}")
    for name in documented_metrics() - FIRST_SEEN_WHEN_IT_HAPPENS:
        if not {name, f"{name}_bucket"} & set(series):
            problems.append(f"docs/METRICS.md lists {name}, which is not exported")
    assert not problems, "\n".join(problems)
    # the labelled series the dashboards group by really exist after play
    assert value(web_text, "cc_ws_active_connections", transport="sse") == 1
    assert value(web_text, "cc_shop_settlement_total", result="rejected") == 1
    assert (
        value(web_text, "cc_auth_login_fail_total", reason="bad_password") == 7
    )  # 2 + the 5 that locked
    assert value(web_text, "cc_auth_login_fail_total", reason="locked") == 1
    assert value(web_text, "cc_auth_login_locked_total") == 1
