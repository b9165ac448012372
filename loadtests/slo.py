"""The verdict: every SPEC §5 service level with its measured value and PASS/FAIL.

    python -m loadtests.slo [--summary loadtests/reports/summary.json]
                            [--database-url URL --since ISO-8601] [--kpi-skip-reason TEXT]

Latencies come from the run's ``summary.json`` (:mod:`loadtests.summary`: per-class p95
from the union of Locust's response-time distributions of that class's entries; classes
in :mod:`loadtests.targets`), measured once every player was in (the whole run's p95,
ramp-up included, is shown beside it); the error rate counts the whole run. A run that
never had all its players in, or lost some, fails the "concurrent players" row. Event
loss, double payout, negative balance and ledger = balance are counted in the database
after the run (:mod:`loadtests.dbchecks`); without ``--database-url`` they are FAIL
("not checked"), never silently passed. The KPI row is
SKIPPED, with the reason, when the run had no KPI analyst (no ClickHouse behind the
server); a latency class that should have samples and has none is a FAIL. Throughput is
reported, not judged. Prints the table, writes ``slo.txt`` and ``slo.json`` beside the
summary, and exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtests.targets import ERROR_RATE_MAX, LATENCY_SLOS

PASS, FAIL, SKIPPED = "PASS", "FAIL", "SKIPPED"
DB_ROWS = (
    ("event_loss", "event loss (unpublished / unprocessed events)"),
    ("double_payout", "double payout"),
    ("negative_balance", "negative balance"),
    ("ledger_balance", "ledger = balance (mismatches, chain breaks)"),
)


@dataclass
class Row:
    title: str
    target: str
    measured: str
    samples: str
    verdict: str
    note: str = ""


def measured(summary: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The statistics latencies are judged on: the steady state (every player in) when
    the run reached it, else the whole run."""
    steady = summary.get("steady")
    if steady and steady["totals"]["requests"]:
        return steady, "steady"
    return summary["whole"], "whole"


def latency_rows(summary: dict[str, Any], kpi_skip_reason: str | None) -> list[Row]:
    stats, which = measured(summary)
    whole = summary["whole"]["classes"]
    rows = []
    for slo in LATENCY_SLOS:
        c = stats["classes"].get(slo.key, {})
        n = int(c.get("requests") or 0)
        p95 = c.get("p95_ms")
        target = f"< {slo.target_ms:g} ms"
        if slo.key == "kpi" and not summary.get("kpi_enabled"):
            reason = kpi_skip_reason or "no KPI analyst in this run (LOADTEST_KPI=0)"
            rows.append(Row(slo.title, target, "-", "0", SKIPPED, reason))
            continue
        if n == 0 or p95 is None:
            rows.append(Row(slo.title, target, "-", "0", FAIL, f"no samples ({which} run)"))
            continue
        failures = int(c.get("failures") or 0)
        note = f"p50 {c.get('p50_ms')} / p99 {c.get('p99_ms')} ms"
        if which == "steady":
            note += f"; whole run incl. ramp-up p95 {whole[slo.key].get('p95_ms')} ms"
        if failures:
            note += f"; {failures} failed"
        verdict = PASS if p95 < slo.target_ms else FAIL
        rows.append(Row(slo.title, target, f"{p95} ms", str(n), verdict, note))
    return rows


def players_row(summary: dict[str, Any]) -> Row:
    """Did the run hold the player count it claims (every player in, none dropped)?"""
    users, at_end, ramp = summary.get("users"), summary.get("players_at_end"), summary["ramp_s"]
    if summary.get("players_in") is None:
        return Row("concurrent players", f"= {users}", "never all in", "-", FAIL, "")
    ok = at_end is not None and users is not None and at_end >= users
    return Row(
        "concurrent players",
        f"= {users}",
        str(at_end),
        "-",
        PASS if ok else FAIL,
        f"all in after {ramp} s of ramp-up; the latencies below are measured from then on",
    )


def error_row(summary: dict[str, Any]) -> Row:
    totals = summary["whole"]["totals"]
    n, failures = int(totals["requests"]), int(totals["failures"])
    rate = failures / n if n else 1.0
    return Row(
        "error rate (failures / requests, HTTP + WS)",
        f"< {ERROR_RATE_MAX * 100:g} %",
        f"{rate * 100:.3f} %",
        str(n),
        PASS if n and rate < ERROR_RATE_MAX else FAIL,
        f"whole run; {failures} failures (game outcomes such as 409 INSUFFICIENT_GOLD"
        " are not failures)",
    )


def db_rows(db: dict[str, Any] | None) -> list[Row]:
    rows = []
    for key, title in DB_ROWS:
        if db is None:
            rows.append(Row(title, "= 0", "-", "-", FAIL, "not checked (no --database-url)"))
            continue
        check = db[key]
        nonzero = {k: v for k, v in check["detail"].items() if v}
        note = ", ".join(f"{k}={v}" for k, v in nonzero.items()) or "every check 0"
        if key == "event_loss":
            drained = db.get("drained_after_s")
            note += (
                f"; worker drained {drained} s after the run"
                if drained is not None
                else "; worker NOT drained within the wait"
            )
        rows.append(
            Row(title, "= 0", str(check["count"]), "-", PASS if check["count"] == 0 else FAIL, note)
        )
    return rows


def throughput(summary: dict[str, Any]) -> str:
    stats, which = measured(summary)
    totals = stats["totals"]
    return (
        f"throughput ({which} run, {stats['duration_s']} s with {summary.get('players_in')}"
        f" players): {totals['http_rps']} HTTP requests/s ({totals['writes_per_s']} writes/s),"
        f" {totals['ws_events']} WS measurements"
    )


def render(rows: list[Row]) -> str:
    head = Row("SLO", "target", "measured", "n", "verdict", "note")
    cols = [
        max(len(getattr(r, f)) for r in [head, *rows])
        for f in ("title", "target", "measured", "samples", "verdict")
    ]
    lines = []
    for r in [head, *rows]:
        cells = (r.title, r.target, r.measured, r.samples, r.verdict)
        padded = [
            c.rjust(w) if i == 3 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, cols, strict=True))
        ]
        line = "  ".join(padded)
        lines.append(f"{line}  {r.note}".rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def judge(
    summary: dict[str, Any], db: dict[str, Any] | None, kpi_skip_reason: str | None = None
) -> tuple[list[Row], bool]:
    rows = [
        players_row(summary),
        *latency_rows(summary, kpi_skip_reason),
        error_row(summary),
        *db_rows(db),
    ]
    return rows, all(r.verdict != FAIL for r in rows)


def report(
    summary_path: Path, db: dict[str, Any] | None, kpi_skip_reason: str | None = None
) -> int:
    """Print and write the verdict of a run; 0 if nothing failed, else 1."""
    summary = json.loads(summary_path.read_text())
    rows, ok = judge(summary, db, kpi_skip_reason)
    notes = []
    if not summary.get("recommendations_registered", True):
        notes.append("note: GET /api/recommendations is not registered; its 404 was accepted")
    text = "\n".join(
        [
            render(rows),
            "",
            throughput(summary),
            *notes,
            f"verdict: {'PASS' if ok else 'FAIL'}",
        ]
    )
    print(text)
    out = summary_path.parent
    (out / "slo.txt").write_text(text + "\n")
    (out / "slo.json").write_text(
        json.dumps(
            {"ok": ok, "rows": [asdict(r) for r in rows], "db": db},
            indent=2,
        )
        + "\n"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--summary", type=Path, default=Path("loadtests/reports/summary.json"))
    parser.add_argument("--database-url", help="check the database the server used")
    parser.add_argument("--since", help="ISO-8601 start of the run (rows written since)")
    parser.add_argument("--kpi-skip-reason")
    args = parser.parse_args(argv)
    db = None
    if args.database_url:
        from loadtests import dbchecks

        summary = json.loads(args.summary.read_text())
        since = (
            datetime.fromisoformat(args.since)
            if args.since
            else datetime.fromtimestamp(summary["whole"]["started_at"]).astimezone()
        )
        db = dbchecks.run(args.database_url, since)
    return report(args.summary, db, args.kpi_skip_reason)


if __name__ == "__main__":
    sys.exit(main())
