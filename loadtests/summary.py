"""The run's numbers, computed inside the Locust process from Locust's own statistics.

Why here: Locust keeps every entry's full response-time distribution (``StatsEntry.
response_times``, milliseconds rounded the Locust way). A class p95 (say, every read
endpoint together) is the p95 of the *union* of those distributions — not an average of
per-endpoint p95s — so each SLO class is built by ``StatsEntry.extend`` over its entries
and asked for ``get_response_time_percentile`` here, where the distributions live.

Two sets of statistics are summarised: the whole run (Locust's own, the same as its CSV
and HTML reports) and the steady state — the requests made once every player was in
(after Locust's ``spawning_complete``; :class:`SteadyState` records them). The SLO
latencies are judged on the steady state: "p95 at N concurrent players" is a statement
about N players playing, and the ramp-up is N arrivals compressed into seconds (every
one of them an argon2 login). The result is one JSON file (``summary.json``) that
:mod:`loadtests.slo` judges.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.stats import RequestStats, StatsEntry

from loadtests.targets import LATENCY_SLOS, RETRY_SUFFIX, WS

PERCENTILES = (0.5, 0.95, 0.99)


class SteadyState:
    """The requests made after every player arrived, in a ``RequestStats`` of their own
    (local runner only: in distributed mode the requests fire on the workers)."""

    def __init__(self) -> None:
        self.stats = RequestStats(use_response_times_cache=False)
        self.recording = False
        self.players_in: int | None = None
        self.ramp_s: float | None = None
        self.players_at_end: int | None = None

    def start(self, user_count: int, test_started_at: float) -> None:
        """Every player is in: record from now on (the first time only)."""
        if self.players_in is not None:
            return
        self.players_in = user_count
        self.ramp_s = round(time.time() - test_started_at, 1)
        self.stats.reset_all()
        self.stats.total.start_time = time.time()
        self.recording = True

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: Exception | None = None,
        **_: Any,
    ) -> None:
        if not self.recording:
            return
        self.stats.log_request(request_type, name, response_time, response_length)  # type: ignore[arg-type]
        if exception is not None:
            self.stats.log_error(request_type, name, exception)

    def stop(self, user_count: int) -> None:
        self.players_at_end = user_count
        self.recording = False


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


def section(stats: RequestStats) -> dict[str, Any]:
    """Per-SLO-class numbers from merged distributions, per-entry numbers, totals,
    throughput and errors of one ``RequestStats``."""
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
    ended = total.last_request_timestamp or time.time()
    seconds = max(1e-9, ended - total.start_time)
    http = [e for e in entries if e.method != WS]
    ws = [e for e in entries if e.method == WS]
    http_requests = sum(e.num_requests for e in http)
    writes = sum(
        e.num_requests for e in http if e.method == "POST" and not e.name.endswith(RETRY_SUFFIX)
    )
    return {
        "started_at": total.start_time,
        "ended_at": ended,
        "duration_s": round(seconds, 1),
        "classes": classes,
        "totals": {
            "requests": total.num_requests,
            "failures": total.num_failures,
            "http_requests": http_requests,
            "http_failures": sum(e.num_failures for e in http),
            "ws_events": sum(e.num_requests for e in ws),
            "ws_failures": sum(e.num_failures for e in ws),
            "http_rps": round(http_requests / seconds, 1),
            "writes_per_s": round(writes / seconds, 1),
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
    }


def build(environment: Environment, steady: SteadyState, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": environment.host,
        "users": getattr(environment.parsed_options, "num_users", None),
        "players_in": steady.players_in,
        "ramp_s": steady.ramp_s,
        "players_at_end": steady.players_at_end,
        "whole": section(environment.stats),
        "steady": section(steady.stats) if steady.players_in is not None else None,
        **extra,
    }


def write(environment: Environment, steady: SteadyState, path: Path, extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(environment, steady, extra), indent=2) + "\n")
