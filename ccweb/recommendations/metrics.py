"""Recommendation API metrics (seed 003 §1.5: cc_reco_request_total, cc_reco_latency_seconds;
the fallback rate is fallback / all of the counter)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RESULTS = ("ok", "fallback", "error")

RECO_REQUESTS = Counter(
    "cc_reco_request_total",
    "Recommendation API answers: ok (the segment's rules found offers), fallback (no"
    " segment, or nothing its rules could offer: cold-start offers), error",
    ["result"],
)
RECO_LATENCY = Histogram(
    "cc_reco_latency_seconds",
    "Recommendation API time from the connection to the answer (SLO: p95 < 200 ms)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
)
for _result in RESULTS:  # every result shows from the first scrape, at 0
    RECO_REQUESTS.labels(result=_result)


def observe(result: str, seconds: float) -> None:
    RECO_REQUESTS.labels(result=result).inc()
    RECO_LATENCY.observe(seconds)
