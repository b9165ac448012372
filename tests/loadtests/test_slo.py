"""The verdict rules of ``loadtests/slo.py`` and the game-outcome rules of
``loadtests/outcomes.py`` (pure: no Locust, no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtests import outcomes, slo
from loadtests import targets as t


def _section(**classes: dict[str, Any]) -> dict[str, Any]:
    base = {"requests": 100, "failures": 0, "p50_ms": 5, "p95_ms": 10, "p99_ms": 20}
    return {
        "classes": {s.key: {**base, **classes.get(s.key, {})} for s in t.LATENCY_SLOS},
        "totals": {
            "requests": 10_000,
            "failures": 0,
            "http_rps": 90.0,
            "writes_per_s": 40.0,
            "ws_events": 3000,
        },
        "duration_s": 100.0,
        "started_at": 0.0,
    }


def _summary(**classes: dict[str, Any]) -> dict[str, Any]:
    """A run whose steady state (every player in) has ``classes``; its whole run,
    ramp-up included, is slower (the verdict must not use it)."""
    return {
        "users": 200,
        "players_in": 200,
        "players_at_end": 200,
        "ramp_s": 20.0,
        "whole": _section(**{s.key: {"p95_ms": 999} for s in t.LATENCY_SLOS}),
        "steady": _section(**classes),
        "kpi_enabled": True,
    }


def _db(**counts: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: {"count": counts.get(key, 0), "detail": {"x": counts.get(key, 0)}}
        for key, _ in slo.DB_ROWS
    }
    out["drained_after_s"] = 0.5
    return out


def _verdicts(rows: list[slo.Row]) -> dict[str, str]:
    return {r.title: r.verdict for r in rows}


def test_all_within_targets_pass() -> None:
    rows, ok = slo.judge(_summary(), _db())
    assert ok and set(_verdicts(rows).values()) == {"PASS"}


def test_a_slow_class_fails_at_its_target() -> None:
    rows, ok = slo.judge(_summary(read={"p95_ms": 25}), _db())
    assert not ok
    assert _verdicts(rows)["read API p95 (dashboard, profile, catalog)"] == "FAIL"


def test_kpi_is_skipped_with_its_reason_without_an_analyst() -> None:
    summary = _summary(kpi={"requests": 0, "p95_ms": None})
    summary["kpi_enabled"] = False
    rows, ok = slo.judge(summary, _db(), "ClickHouse is not configured")
    kpi = next(r for r in rows if r.title == "KPI query p95")
    assert ok and kpi.verdict == "SKIPPED" and kpi.note == "ClickHouse is not configured"


def test_a_class_without_samples_fails() -> None:
    rows, ok = slo.judge(_summary(push={"requests": 0, "p95_ms": None}), _db())
    assert not ok
    assert _verdicts(rows)["commit → WebSocket push p95"] == "FAIL"


def test_error_rate_and_database_findings_fail() -> None:
    summary = _summary()
    summary["whole"]["totals"]["failures"] = 10  # 0.1 % of the whole run: not below
    rows, ok = slo.judge(summary, _db(double_payout=1))
    verdicts = _verdicts(rows)
    assert not ok
    assert verdicts["error rate (failures / requests, HTTP + WS)"] == "FAIL"
    assert verdicts["double payout"] == "FAIL"
    assert verdicts["event loss (unpublished / unprocessed events)"] == "PASS"


def test_latencies_are_judged_after_the_ramp_up_and_the_whole_run_is_shown() -> None:
    rows, ok = slo.judge(_summary(), _db())
    read = rows[1]
    assert ok and read.measured == "10 ms" and "whole run incl. ramp-up p95 999 ms" in read.note


def test_a_run_that_lost_players_or_never_had_them_all_fails() -> None:
    summary = _summary()
    summary["players_at_end"] = 190  # ten could not get in
    rows, ok = slo.judge(summary, _db())
    assert not ok and _verdicts(rows)["concurrent players"] == "FAIL"
    summary = _summary()
    summary["players_in"], summary["steady"] = None, None
    rows, ok = slo.judge(summary, _db())
    assert not ok and rows[0].measured == "never all in"


def test_unchecked_database_is_never_a_pass() -> None:
    rows, ok = slo.judge(_summary(), None)
    assert not ok
    assert _verdicts(rows)["negative balance"] == "FAIL"


def test_report_writes_the_table_and_exits_with_the_verdict(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_summary()))
    assert slo.report(path, _db()) == 0
    assert "verdict: PASS" in (tmp_path / "slo.txt").read_text()
    assert json.loads((tmp_path / "slo.json").read_text())["ok"] is True
    assert slo.report(path, _db(event_loss=2)) == 1


def test_game_outcomes_are_not_failures_and_other_errors_are() -> None:
    def err(code: str) -> dict[str, Any]:
        return {"error": {"code": code, "message": "", "details": {}}}

    assert outcomes.verdict(t.STREAK_CLAIM, 409, err("ALREADY_CLAIMED")) is None
    assert outcomes.verdict(t.PURCHASE, 409, err("OUT_OF_STOCK")) is None
    assert outcomes.verdict(t.SLOT, 409, err("INSUFFICIENT_GOLD")) is None
    assert outcomes.verdict(t.DASHBOARD, 304, None) is None
    # the same code elsewhere, another 409 code, or any other status is a failure
    assert outcomes.verdict(t.DASHBOARD, 409, err("ALREADY_CLAIMED")) == "HTTP 409 ALREADY_CLAIMED"
    assert outcomes.verdict(t.SLOT, 409, err("IN_PROGRESS")) == "HTTP 409 IN_PROGRESS"
    assert outcomes.verdict(t.PURCHASE, 429, err("RATE_LIMITED")) == "HTTP 429 RATE_LIMITED"
    assert outcomes.verdict(t.SLOT, 500, None) == "HTTP 500"
    # an endpoint missing from the server under test, only when the caller allows it
    assert outcomes.verdict(t.RECOMMENDATIONS, 404, err("NOT_FOUND")) == "HTTP 404 NOT_FOUND"
    allowed = frozenset({"NOT_FOUND"})
    assert outcomes.verdict(t.RECOMMENDATIONS, 404, err("NOT_FOUND"), allowed) is None
