"""The run's numbers, computed inside the Locust process from Locust's own statistics.

Why here: Locust keeps every entry's full response-time distribution (``StatsEntry.
response_times``, milliseconds rounded the Locust way). A class p95 (say, every read
endpoint together) is the p95 of the *union* of those distributions — not an average of
per-endpoint p95s — so each SLO class is built by ``StatsEntry.extend`` over its entries
and asked for ``get_response_time_percentile`` here, where the distributions live. The
result is one JSON file (``summary.json``) that :mod:`loadtests.slo` judges; the per-
endpoint CSV and HTML reports come from Locust itself (``--csv``/``--html``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.stats import StatsEntry

from loadtests.targets import LATENCY_SLOS, RETRY_SUFFIX, WS

PERCENTILES = (0.5, 0.95, 0.99)


def _numbers(entry: StatsEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "max_ms": round(entry.max_response_time, 1),
    }
    for q in PERCENTILES:
        out[f"p{round(q * 100)}_ms"] = (
            entry.get_response_time_percentile(q) if entry.num_requests else None
        )
    return out


def build(environment: Environment, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-entry numbers, per-SLO-class numbers from merged distributions, totals,
    errors and throughput."""
    stats = environment.stats
    entries = list(stats.entries.values())
    classes: dict[str, Any] = {}
    for slo in LATENCY_SLOS:
        merged = StatsEntry(stats, slo.key, slo.request_type)
        names = []
        for e in entries:
            if slo.covers(e.method or "", e.name):
                merged.extend(e)
                names.append(e.name)
        classes[slo.key] = {**_numbers(merged), "entries": sorted(names)}
    total = stats.total
    started = total.start_time
    ended = total.last_request_timestamp or time.time()
    seconds = max(1e-9, ended - started)
    http = [e for e in entries if e.method != WS]
    ws = [e for e in entries if e.method == WS]
    http_requests = sum(e.num_requests for e in http)
    return {
        "host": environment.host,
        "started_at": started,
        "ended_at": ended,
        "duration_s": round(seconds, 1),
        "users": getattr(environment.parsed_options, "num_users", None),
        "classes": classes,
        "totals": {
            "requests": total.num_requests,
            "failures": total.num_failures,
            "http_requests": http_requests,
            "http_failures": sum(e.num_failures for e in http),
            "ws_events": sum(e.num_requests for e in ws),
            "ws_failures": sum(e.num_failures for e in ws),
            "http_rps": round(http_requests / seconds, 1),
            "writes_per_s": round(
                sum(
                    e.num_requests
                    for e in entries
                    if e.method == "POST" and not e.name.endswith(RETRY_SUFFIX)
                )
                / seconds,
                1,
            ),
        },
        "entries": [
            {"type": e.method, "name": e.name, **_numbers(e)}
            for e in sorted(entries, key=lambda e: (e.method or "", e.name))
        ],
        "errors": [
            {
                "type": err.method,
                "name": err.name,
                "error": str(err.error),
                "count": err.occurrences,
            }
            for err in stats.errors.values()
        ],
        **(extra or {}),
    }


def write(environment: Environment, path: Path, extra: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(environment, extra), indent=2) + "\n")
